//! InfluxQL's selectors `first`, `last`, `min`, `max` as one DataFusion aggregate function.
//!
//! Called as `fn(value, time)` with `time` as `Int64` nanoseconds; nulls are skipped. Ties are
//! broken as 1.x breaks them: `first`/`last` prefer the larger value among points at the same
//! time, `min`/`max` the earlier point among equal values. With [`Output::Time`] the function
//! gives the selected point's time instead of its value; called as `fn(value, time, other)`
//! with [`Output::Aux`], the selected point's `other` (a field or tag selected beside it).
//!
//! DataFusion's `first_value`/`last_value` with an `ORDER BY` and a `FILTER` do the same, but
//! compare every row lexicographically over two sort keys; this does one integer comparison
//! per row for `first`/`last` and one value comparison for `min`/`max`.

use std::cmp::Ordering;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, make_comparator};
use datafusion::arrow::compute::{SortOptions, cast};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature,
    TypeSignature, Volatility,
};
use serde::{Deserialize, Serialize};

pub use super::aggregate::Output;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SelectorKind {
    First,
    Last,
    Min,
    Max,
}

impl SelectorKind {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "first" => Self::First,
            "last" => Self::Last,
            "min" => Self::Min,
            "max" => Self::Max,
            _ => return None,
        })
    }

    /// Whether point `a` (value comparison `by_value` against `b`, times `ta`, `tb`) is
    /// selected over point `b`.
    fn better(self, by_value: Ordering, ta: i64, tb: i64) -> bool {
        match self {
            Self::First => ta < tb || (ta == tb && by_value == Ordering::Greater),
            Self::Last => ta > tb || (ta == tb && by_value == Ordering::Greater),
            Self::Min => by_value == Ordering::Less || (by_value == Ordering::Equal && ta < tb),
            Self::Max => by_value == Ordering::Greater || (by_value == Ordering::Equal && ta < tb),
        }
    }

    /// Whether the value needs comparing even when the times differ.
    fn by_value(self) -> bool {
        matches!(self, Self::Min | Self::Max)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InfluxSelector {
    pub kind: SelectorKind,
    pub output: Output,
    #[serde(skip, default = "signature")]
    signature: Signature,
}

fn signature() -> Signature {
    Signature::new(
        TypeSignature::OneOf(vec![TypeSignature::Any(2), TypeSignature::Any(3)]),
        Volatility::Immutable,
    )
}

impl InfluxSelector {
    pub fn new(kind: SelectorKind, output: Output) -> Self {
        Self {
            kind,
            output,
            signature: signature(),
        }
    }

    pub fn udaf(self) -> AggregateUDF {
        AggregateUDF::new_from_impl(self)
    }

    fn per_group(&self, args: &AccumulatorArgs) -> Result<BestPerGroup> {
        let Some(value) = args.expr_fields.first() else {
            return exec_err!("{} takes a value and a time", self.name());
        };
        let aux_type = match (self.output, args.expr_fields.get(2)) {
            (Output::Aux, Some(a)) => Some(a.data_type().clone()),
            (Output::Aux, None) => return exec_err!("{} takes a third column", self.name()),
            _ => None,
        };
        Ok(BestPerGroup {
            kind: self.kind,
            output: self.output,
            value_type: value.data_type().clone(),
            aux_type,
            best: Vec::new(),
            scratch: Vec::new(),
        })
    }
}

impl AggregateUDFImpl for InfluxSelector {
    fn name(&self) -> &str {
        match (self.kind, self.output) {
            (SelectorKind::First, Output::Value) => "influx_first",
            (SelectorKind::Last, Output::Value) => "influx_last",
            (SelectorKind::Min, Output::Value) => "influx_min",
            (SelectorKind::Max, Output::Value) => "influx_max",
            (SelectorKind::First, Output::Time) => "influx_first_time",
            (SelectorKind::Last, Output::Time) => "influx_last_time",
            (SelectorKind::Min, Output::Time) => "influx_min_time",
            (SelectorKind::Max, Output::Time) => "influx_max_time",
            (SelectorKind::First, Output::Aux) => "influx_first_aux",
            (SelectorKind::Last, Output::Aux) => "influx_last_aux",
            (SelectorKind::Min, Output::Aux) => "influx_min_aux",
            (SelectorKind::Max, Output::Aux) => "influx_max_aux",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let arg = match self.output {
            Output::Time => return Ok(DataType::Int64),
            Output::Value => arg_types.first(),
            Output::Aux => arg_types.get(2),
        };
        match arg {
            Some(t) => Ok(t.clone()),
            None => exec_err!(
                "{} takes a value and a time (and, for its aux form, another column)",
                self.name()
            ),
        }
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(Best(self.per_group(&args)?)))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(self.per_group(&args)?))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let Some(value) = args.input_fields.first() else {
            return exec_err!("{} takes a value and a time", self.name());
        };
        let mut fields = vec![
            Arc::new(Field::new(
                format!("{}_value", args.name),
                value.data_type().clone(),
                true,
            )),
            Arc::new(Field::new(
                format!("{}_time", args.name),
                DataType::Int64,
                true,
            )),
        ];
        if let (Output::Aux, Some(aux)) = (self.output, args.input_fields.get(2)) {
            fields.push(Arc::new(Field::new(
                format!("{}_aux", args.name),
                aux.data_type().clone(),
                true,
            )));
        }
        Ok(fields)
    }
}

/// Without groups: the groups accumulator with every row in group 0.
#[derive(Debug)]
struct Best(BestPerGroup);

impl Best {
    /// The selected value, time and aux so far (nulls before any point); the state stays.
    fn point(&self) -> Result<Vec<ScalarValue>> {
        let g = &self.0;
        let mut out = match g.best.first().cloned().flatten() {
            Some(p) => vec![p.value, ScalarValue::Int64(Some(p.time)), p.aux],
            None => vec![
                ScalarValue::try_from(&g.value_type)?,
                ScalarValue::Int64(None),
                ScalarValue::try_from(g.aux_type.as_ref().unwrap_or(&DataType::Null))?,
            ],
        };
        if g.aux_type.is_none() {
            out.pop();
        }
        Ok(out)
    }
}

impl Accumulator for Best {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let rows = values.first().map_or(0, |v| v.len());
        GroupsAccumulator::update_batch(&mut self.0, values, &vec![0; rows], None, 1)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut point = self.point()?;
        let i = self.0.output.column();
        Ok(std::mem::replace(&mut point[i], ScalarValue::Null))
    }

    fn size(&self) -> usize {
        GroupsAccumulator::size(&self.0)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.point()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.update_batch(states)
    }
}

/// The selected point of every group: each batch first finds its best row per group with
/// integer comparisons, then folds one value per group into the groups' best.
#[derive(Debug)]
struct BestPerGroup {
    kind: SelectorKind,
    output: Output,
    value_type: DataType,
    /// The third argument's type ([`Output::Aux`] only).
    aux_type: Option<DataType>,
    best: Vec<Option<Picked>>,
    /// The batch's best row per group (`usize::MAX`: none yet), reset after each batch.
    scratch: Vec<usize>,
}

/// A group's selected point: its value and time, and its aux column's value (null without).
#[derive(Debug, Clone)]
struct Picked {
    value: ScalarValue,
    time: i64,
    aux: ScalarValue,
}

impl Output {
    /// The column of a selector's state (value, time, aux) that this output answers.
    fn column(self) -> usize {
        match self {
            Output::Value => 0,
            Output::Time => 1,
            Output::Aux => 2,
        }
    }
}

impl BestPerGroup {
    fn fold(
        &mut self,
        values: &ArrayRef,
        times: &ArrayRef,
        aux: Option<&ArrayRef>,
        groups: &[usize],
        filter: Option<&BooleanArray>,
        total: usize,
    ) -> Result<()> {
        self.best.resize(total, None);
        self.scratch.resize(total, usize::MAX);
        let times = cast(times, &DataType::Int64)?;
        let times = times.as_primitive::<Int64Type>();
        let cmp = make_comparator(values.as_ref(), values.as_ref(), SortOptions::default())?;
        let mut touched = Vec::new();
        for (i, &g) in groups.iter().enumerate() {
            if values.is_null(i)
                || times.is_null(i)
                || filter.is_some_and(|f| !f.is_valid(i) || !f.value(i))
            {
                continue;
            }
            let j = self.scratch[g];
            if j == usize::MAX {
                self.scratch[g] = i;
                touched.push(g);
                continue;
            }
            let (ti, tj) = (times.value(i), times.value(j));
            let by_value = if self.kind.by_value() || ti == tj {
                cmp(i, j)
            } else {
                Ordering::Equal
            };
            if self.kind.better(by_value, ti, tj) {
                self.scratch[g] = i;
            }
        }
        for g in touched {
            let i = std::mem::replace(&mut self.scratch[g], usize::MAX);
            let (v, t) = (ScalarValue::try_from_array(values, i)?, times.value(i));
            let replace = match &self.best[g] {
                None => true,
                Some(b) => self.kind.better(
                    v.partial_cmp(&b.value).unwrap_or(Ordering::Equal),
                    t,
                    b.time,
                ),
            };
            if replace {
                let aux = match aux {
                    Some(a) => ScalarValue::try_from_array(a, i)?,
                    None => ScalarValue::Null,
                };
                self.best[g] = Some(Picked {
                    value: v,
                    time: t,
                    aux,
                });
            }
        }
        Ok(())
    }

    /// The groups' values, times and (with an aux column) aux values.
    fn columns(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let best = emit_to.take_needed(&mut self.best);
        let column = |ty: &DataType, get: &dyn Fn(&Picked) -> ScalarValue| -> Result<ArrayRef> {
            if best.is_empty() {
                return Ok(datafusion::arrow::array::new_empty_array(ty));
            }
            let null = ScalarValue::try_from(ty)?;
            ScalarValue::iter_to_array(
                best.iter()
                    .map(|b| b.as_ref().map_or_else(|| null.clone(), get)),
            )
        };
        let values = column(&self.value_type, &|p| p.value.clone())?;
        let times: ArrayRef = Arc::new(
            best.iter()
                .map(|b| b.as_ref().map(|p| p.time))
                .collect::<datafusion::arrow::array::Int64Array>(),
        );
        let mut out = vec![values, times];
        if let Some(ty) = &self.aux_type {
            out.push(column(ty, &|p| p.aux.clone())?);
        }
        Ok(out)
    }
}

impl GroupsAccumulator for BestPerGroup {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        match values {
            [v, t] => self.fold(v, t, None, group_indices, opt_filter, total_num_groups),
            [v, t, a] => self.fold(v, t, Some(a), group_indices, opt_filter, total_num_groups),
            _ => exec_err!("InfluxQL selectors take a value and a time"),
        }
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let mut columns = self.columns(emit_to)?;
        let i = self.output.column();
        if i >= columns.len() {
            return exec_err!("an aux selector without its aux column");
        }
        Ok(columns.swap_remove(i))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        self.columns(emit_to)
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.update_batch(values, group_indices, None, total_num_groups)
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        use datafusion::arrow::compute::{not, nullif, prep_null_mask_filter};
        let (v, t) = match values {
            [v, t] | [v, t, _] => (v, t),
            _ => return exec_err!("InfluxQL selectors take a value and a time"),
        };
        let mut out = vec![Arc::clone(v), cast(t, &DataType::Int64)?];
        out.extend(values.get(2).cloned());
        Ok(match opt_filter {
            None => out,
            Some(f) => {
                let dropped = not(&prep_null_mask_filter(f))?;
                out.iter()
                    .map(|c| nullif(c, &dropped))
                    .collect::<std::result::Result<_, _>>()?
            }
        })
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.best.capacity() * std::mem::size_of::<Option<Picked>>()
            + self.scratch.capacity() * std::mem::size_of::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float64Array, Int64Array};

    fn run(kind: SelectorKind, output: Output, v: Vec<Option<f64>>, t: Vec<i64>) -> ScalarValue {
        let mut acc = Best(BestPerGroup {
            kind,
            output,
            value_type: DataType::Float64,
            aux_type: None,
            best: Vec::new(),
            scratch: Vec::new(),
        });
        // In two batches, so that the fold across batches is exercised too.
        let half = v.len() / 2;
        let values: ArrayRef = Arc::new(Float64Array::from(v));
        let times: ArrayRef = Arc::new(Int64Array::from(t));
        acc.update_batch(&[values.slice(0, half), times.slice(0, half)])
            .unwrap();
        acc.update_batch(&[
            values.slice(half, values.len() - half),
            times.slice(half, times.len() - half),
        ])
        .unwrap();
        acc.evaluate().unwrap()
    }

    #[test]
    fn groups_keep_their_own_points() {
        let mut acc = BestPerGroup {
            kind: SelectorKind::Last,
            output: Output::Value,
            value_type: DataType::Float64,
            aux_type: None,
            best: Vec::new(),
            scratch: Vec::new(),
        };
        let values: ArrayRef = Arc::new(Float64Array::from(vec![
            Some(1.0),
            Some(2.0),
            Some(3.0),
            None,
            Some(7.0),
        ]));
        let times: ArrayRef = Arc::new(Int64Array::from(vec![1, 1, 2, 9, 2]));
        let filter = BooleanArray::from(vec![true, true, true, true, false]);
        acc.update_batch(&[values, times], &[0, 1, 0, 1, 1], Some(&filter), 2)
            .unwrap();
        // A second batch, as partial states: group 1 gets a later point.
        let state_v: ArrayRef = Arc::new(Float64Array::from(vec![Some(5.0)]));
        let state_t: ArrayRef = Arc::new(Int64Array::from(vec![4]));
        acc.merge_batch(&[state_v, state_t], &[1], 2).unwrap();
        let out = acc.evaluate(EmitTo::All).unwrap();
        let out: Vec<_> = out
            .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
            .iter()
            .collect();
        assert_eq!(out, [Some(3.0), Some(5.0)]);
    }

    #[test]
    fn the_aux_form_gives_the_selected_points_other_column() {
        use datafusion::arrow::array::StringArray;
        let mut acc = BestPerGroup {
            kind: SelectorKind::Max,
            output: Output::Aux,
            value_type: DataType::Float64,
            aux_type: Some(DataType::Utf8),
            best: Vec::new(),
            scratch: Vec::new(),
        };
        let values: ArrayRef = Arc::new(Float64Array::from(vec![1.0, 5.0, 5.0, 2.0]));
        let times: ArrayRef = Arc::new(Int64Array::from(vec![1, 4, 2, 3]));
        let aux: ArrayRef = Arc::new(StringArray::from(vec![
            Some("a"),
            Some("late"),
            None,
            Some("d"),
        ]));
        acc.update_batch(&[values, times, aux], &[0, 0, 0, 1], None, 2)
            .unwrap();
        // Partial states (value, time, aux) merge: group 1 gets a larger value.
        let state = acc.state(EmitTo::All).unwrap();
        assert_eq!(state.len(), 3);
        let mut merged = BestPerGroup {
            best: Vec::new(),
            scratch: Vec::new(),
            ..acc
        };
        merged.merge_batch(&state, &[0, 1], 2).unwrap();
        let more: Vec<ArrayRef> = vec![
            Arc::new(Float64Array::from(vec![7.0])),
            Arc::new(Int64Array::from(vec![9])),
            Arc::new(StringArray::from(vec!["g"])),
        ];
        merged.merge_batch(&more, &[1], 2).unwrap();
        let out = merged.evaluate(EmitTo::All).unwrap();
        let out: Vec<_> = out.as_string::<i32>().iter().collect();
        // Group 0: the two 5.0s tie, the earlier (time 2) wins, with its null.
        assert_eq!(out, [None, Some("g")]);
    }

    #[test]
    fn ties_break_as_in_1x() {
        let v = vec![Some(3.0), Some(5.0), None, Some(5.0), Some(1.0), Some(9.0)];
        let t = vec![10, 10, 0, 30, 40, 40];
        let f = |x: f64| ScalarValue::Float64(Some(x));
        // first/last: among points at one time, the larger value.
        assert_eq!(
            run(SelectorKind::First, Output::Value, v.clone(), t.clone()),
            f(5.0)
        );
        assert_eq!(
            run(SelectorKind::Last, Output::Value, v.clone(), t.clone()),
            f(9.0)
        );
        // min/max: among equal values, the earlier point.
        assert_eq!(
            run(SelectorKind::Min, Output::Value, v.clone(), t.clone()),
            f(1.0)
        );
        assert_eq!(
            run(
                SelectorKind::Max,
                Output::Time,
                vec![Some(5.0), Some(5.0)],
                vec![30, 10]
            ),
            ScalarValue::Int64(Some(10))
        );
        assert_eq!(
            run(
                SelectorKind::Last,
                Output::Value,
                vec![None, None],
                vec![1, 2]
            ),
            ScalarValue::Float64(None)
        );
    }
}
