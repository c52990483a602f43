//! A `datafusion-proto` extension codec for Fletch's plan nodes and functions, so that a plan
//! with InfluxQL's pieces in it can be sent to another node and run there.
//!
//! Everything DataFusion knows (scans, filters, aggregates, its own functions) is encoded by
//! `datafusion-proto` itself; this codec adds the parts only Fletch knows, each as a small JSON
//! document ([`Encoded`]) of its parameters:
//!
//! ```text
//!   GapFill / GapFillExec             ──▶ {"GapFill": {params}}
//!   percentile / mode / integral      ──▶ {"Aggregate": {kind, output}}
//!   first / last / min / max          ──▶ {"Selector": {kind, output}}
//!   derivative, difference, ... (window) ──▶ {"Transform": {kind}}
//!   sample's draw (window)            ──▶ {"Sample": {n}}
//! ```
//!
//! `influx_time_bucket` has no parameters of its own: it is written by name and found by name
//! in the receiving session, where [`crate::session`] registers it.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, Result, TableReference, not_impl_err};
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{AggregateUDF, Extension, LogicalPlan, WindowUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::{DefaultLogicalExtensionCodec, LogicalExtensionCodec};
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use serde::{Deserialize, Serialize};

use super::aggregate::InfluxAggregate;
use super::gapfill::{GapFill, GapFillExec, GapFillParams};
use super::sample::InfluxSample;
use super::selector::InfluxSelector;
use super::transform::InfluxTransform;

/// The codec's payloads.
#[derive(Debug, Serialize, Deserialize)]
pub enum Encoded {
    GapFill(GapFillParams),
    Aggregate(InfluxAggregate),
    Selector(InfluxSelector),
    Transform(InfluxTransform),
    Sample(InfluxSample),
}

impl Encoded {
    fn write(&self, buf: &mut Vec<u8>) -> Result<()> {
        serde_json::to_writer(buf, self)
            .map_err(|e| DataFusionError::Internal(format!("encoding a Fletch plan node: {e}")))
    }

    fn read(buf: &[u8]) -> Result<Self> {
        serde_json::from_slice(buf)
            .map_err(|e| DataFusionError::Internal(format!("decoding a Fletch plan node: {e}")))
    }
}

fn one<T: Clone>(inputs: &[T], node: &str) -> Result<T> {
    match inputs {
        [input] => Ok(input.clone()),
        _ => Err(DataFusionError::Internal(format!(
            "{node} takes one input, got {}",
            inputs.len()
        ))),
    }
}

/// The codec; use it on both sides of the wire.
#[derive(Debug, Default, Clone)]
pub struct FletchCodec;

impl LogicalExtensionCodec for FletchCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        _ctx: &TaskContext,
    ) -> Result<Extension> {
        match Encoded::read(buf)? {
            Encoded::GapFill(params) => Ok(Extension {
                node: Arc::new(GapFill::try_new(one(inputs, "GapFill")?, params)?),
            }),
            other => Err(unexpected(&other, "plan node")),
        }
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        if let Some(fill) = node.node.as_any().downcast_ref::<GapFill>() {
            return Encoded::GapFill(fill.params.clone()).write(buf);
        }
        not_impl_err!("no Fletch encoding for the plan node {}", node.node.name())
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        DefaultLogicalExtensionCodec {}.try_decode_table_provider(buf, table_ref, schema, ctx)
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        DefaultLogicalExtensionCodec {}.try_encode_table_provider(table_ref, node, buf)
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        DefaultLogicalExtensionCodec {}.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        DefaultLogicalExtensionCodec {}.try_encode_file_format(buf, node)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        decode_udaf(name, buf)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        encode_udaf(node, buf)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        encode_udwf(node, buf)
    }
}

impl PhysicalExtensionCodec for FletchCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        _ctx: &TaskContext,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match Encoded::read(buf)? {
            Encoded::GapFill(params) => Ok(Arc::new(GapFillExec::try_new(
                one(inputs, "GapFillExec")?,
                params,
            )?)),
            other => Err(unexpected(&other, "execution node")),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        if let Some(fill) = node.downcast_ref::<GapFillExec>() {
            return Encoded::GapFill(fill.params().clone()).write(buf);
        }
        not_impl_err!("no Fletch encoding for the execution node {}", node.name())
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        decode_udaf(name, buf)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        encode_udaf(node, buf)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        encode_udwf(node, buf)
    }
}

fn unexpected(e: &Encoded, what: &str) -> DataFusionError {
    DataFusionError::Internal(format!("decoding a Fletch {what}, found {e:?}"))
}

// Functions that are not Fletch's write nothing, and DataFusion resolves them by name.
fn encode_udaf(node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
    if let Some(f) = node.inner().downcast_ref::<InfluxSelector>() {
        return Encoded::Selector(f.clone()).write(buf);
    }
    match node.inner().downcast_ref::<InfluxAggregate>() {
        Some(f) => Encoded::Aggregate(f.clone()).write(buf),
        None => Ok(()),
    }
}

fn decode_udaf(name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
    match Encoded::read(buf) {
        Ok(Encoded::Aggregate(f)) => Ok(Arc::new(f.udaf())),
        Ok(Encoded::Selector(f)) => Ok(Arc::new(f.udaf())),
        _ => not_impl_err!("no Fletch aggregate function {name}"),
    }
}

fn encode_udwf(node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
    if let Some(f) = node.inner().downcast_ref::<InfluxTransform>() {
        return Encoded::Transform(f.clone()).write(buf);
    }
    match node.inner().downcast_ref::<InfluxSample>() {
        Some(f) => Encoded::Sample(f.clone()).write(buf),
        None => Ok(()),
    }
}

fn decode_udwf(name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
    match Encoded::read(buf) {
        Ok(Encoded::Transform(f)) => Ok(Arc::new(f.udwf())),
        Ok(Encoded::Sample(f)) => Ok(Arc::new(f.udwf())),
        _ => not_impl_err!("no Fletch window function {name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{AggregateKind, Output};
    use crate::gapfill::FillValue;
    use crate::selector::SelectorKind;
    use crate::time_bucket::TimeBucket;
    use crate::transform::TransformKind;
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::logical_expr::{ExprFunctionExt, LogicalPlanBuilder, cast};
    use datafusion::physical_plan::{collect, displayable};
    use datafusion::prelude::{DataFrame, SessionContext, col, lit};
    use datafusion_proto::bytes::{
        logical_plan_from_bytes_with_extension_codec, logical_plan_to_bytes_with_extension_codec,
        physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
    };

    /// Points of two hosts, with a gap in the first.
    fn points(ctx: &SessionContext) -> DataFrame {
        let rows = [
            (0, "a", 1.0),
            (10, "a", 3.0),
            (40, "a", 9.0),
            (0, "b", 2.0),
            (20, "b", 4.0),
        ];
        let values = rows
            .iter()
            .map(|(t, h, v)| vec![lit(*t as i64), lit(*h), lit(*v)])
            .collect();
        let plan = LogicalPlanBuilder::values(values)
            .and_then(|b| b.build())
            .expect("values");
        DataFrame::new(ctx.state(), plan)
            .select(vec![
                col("column1").alias("t"),
                col("column2").alias("host"),
                col("column3").alias("v"),
            ])
            .expect("select")
    }

    /// `SELECT derivative(percentile(v, 50), 10) ... GROUP BY time(10), host fill(linear)`
    /// spelled in DataFusion, with one of each of Fletch's pieces.
    fn query(ctx: &SessionContext) -> LogicalPlan {
        let bucket = TimeBucket::call(col("t"), 10, 0).alias("__time");
        let df = points(ctx)
            .aggregate(
                vec![bucket, col("host").alias("__tag0")],
                vec![
                    InfluxAggregate::percentile(50.0, Output::Value)
                        .udaf()
                        .call(vec![col("v"), col("t")])
                        .alias("__c0"),
                    InfluxAggregate::new(
                        AggregateKind::Integral {
                            unit: 10,
                            window: None,
                        },
                        Output::Value,
                    )
                    .udaf()
                    .call(vec![col("v"), col("t")])
                    .alias("__c1"),
                    InfluxSelector::new(SelectorKind::Last, Output::Value)
                        .udaf()
                        .call(vec![col("v"), col("t")])
                        .alias("__c2"),
                ],
            )
            .expect("aggregate");
        let (state, plan) = df.into_parts();
        let fill = GapFill::try_new(
            plan,
            GapFillParams {
                time: "__time".into(),
                series: vec!["__tag0".into()],
                values: vec!["__c0".into(), "__c1".into(), "__c2".into()],
                interval: 10,
                offset: 0,
                start: Some(0),
                end: 40,
                fill: FillValue::Linear,
                max_buckets: 100,
            },
        )
        .expect("gap fill");
        let df = DataFrame::new(
            state,
            LogicalPlan::Extension(Extension {
                node: Arc::new(fill),
            }),
        );
        let derivative = InfluxTransform::new(TransformKind::Derivative {
            unit: 10,
            non_negative: false,
        })
        .udwf()
        .call(vec![col("__c0"), col("__time")])
        .partition_by(vec![col("__tag0")])
        .order_by(vec![col("__time").sort(true, true)])
        .build()
        .expect("window");
        let drawn = InfluxSample::new(2)
            .udwf()
            .call(vec![col("__c1"), col("__tag0")])
            .partition_by(vec![col("__tag0")])
            .order_by(vec![col("__time").sort(true, true)])
            .build()
            .expect("window");
        df.select(vec![
            col("__time"),
            col("__tag0"),
            cast(derivative, datafusion::arrow::datatypes::DataType::Float64).alias("d"),
            col("__c1"),
            drawn.alias("drawn"),
            col("__c2").alias("last"),
        ])
        .and_then(|df| {
            df.sort(vec![
                col("__tag0").sort(true, true),
                col("__time").sort(true, true),
            ])
        })
        .expect("select")
        .into_unoptimized_plan()
    }

    async fn run(ctx: &SessionContext, plan: Arc<dyn ExecutionPlan>) -> String {
        pretty_format_batches(&collect(plan, ctx.task_ctx()).await.expect("runs"))
            .expect("prints")
            .to_string()
    }

    #[tokio::test]
    async fn plans_with_fletch_nodes_survive_the_wire() {
        let ctx =
            crate::session(datafusion::prelude::SessionConfig::new().with_target_partitions(2));
        let logical = query(&ctx);
        let physical = ctx
            .state()
            .create_physical_plan(&logical)
            .await
            .expect("physical plan");
        let expected = run(&ctx, Arc::clone(&physical)).await;
        // Every bucket of both hosts, interpolated, differentiated.
        assert!(
            expected.contains("| 30     | a      | 2.0 | 0.0  |"),
            "{expected}"
        );
        assert_eq!(
            expected.lines().filter(|l| l.contains("| a ")).count(),
            5,
            "{expected}"
        );
        // sample's draw: two rows of each host.
        assert_eq!(expected.matches("| true ").count(), 4, "{expected}");

        // Physical: encode, decode (as another node would), run.
        let bytes =
            physical_plan_to_bytes_with_extension_codec(Arc::clone(&physical), &FletchCodec)
                .expect("encodes");
        let decoded =
            physical_plan_from_bytes_with_extension_codec(&bytes, &ctx.task_ctx(), &FletchCodec)
                .expect("decodes");
        let shown = displayable(decoded.as_ref()).indent(false).to_string();
        assert!(shown.contains("GapFillExec"), "{shown}");
        assert!(shown.contains("derivative"), "{shown}");
        assert!(shown.contains("influx_percentile"), "{shown}");
        assert!(shown.contains("influx_sample"), "{shown}");
        assert!(shown.contains("influx_last"), "{shown}");
        assert!(shown.contains("influx_time_bucket"), "{shown}");
        assert_eq!(run(&ctx, decoded).await, expected);

        // Logical: the same, planned again on the receiving side.
        let bytes =
            logical_plan_to_bytes_with_extension_codec(&logical, &FletchCodec).expect("encodes");
        let decoded =
            logical_plan_from_bytes_with_extension_codec(&bytes, &ctx.task_ctx(), &FletchCodec)
                .expect("decodes");
        assert_eq!(decoded, logical);
        let replanned = ctx
            .state()
            .create_physical_plan(&decoded)
            .await
            .expect("plans");
        assert_eq!(run(&ctx, replanned).await, expected);
    }
}
