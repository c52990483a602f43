//! `sample(field, n)` as a DataFusion window function: marks `n` rows of each partition,
//! drawn at random with a generator seeded by the partition's tag values, so that the same
//! data gives the same sample on every run (1.x draws a new one each time).
//!
//! Called as `influx_sample(value, tag...) OVER (PARTITION BY <bucket, tags> ORDER BY time)`;
//! the result is `true` at the drawn rows.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{
    PartitionEvaluator, Signature, TypeSignature, Volatility, WindowUDF, WindowUDFImpl,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InfluxSample {
    pub n: usize,
    #[serde(skip, default = "signature")]
    signature: Signature,
}

fn signature() -> Signature {
    Signature::new(TypeSignature::VariadicAny, Volatility::Immutable)
}

impl InfluxSample {
    pub fn new(n: usize) -> Self {
        Self {
            n,
            signature: signature(),
        }
    }

    pub fn udwf(self) -> WindowUDF {
        WindowUDF::new_from_impl(self)
    }
}

impl WindowUDFImpl for InfluxSample {
    fn name(&self) -> &str {
        "influx_sample"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn partition_evaluator(
        &self,
        _args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        Ok(Box::new(Draw { n: self.n }))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(
            field_args.name(),
            DataType::Boolean,
            false,
        )))
    }
}

#[derive(Debug)]
struct Draw {
    n: usize,
}

impl PartitionEvaluator for Draw {
    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        if values.is_empty() {
            return exec_err!("influx_sample takes a value and the series' tags");
        }
        // The seed: the partition's tag values (the same on every row).
        let mut tags: Vec<Option<String>> = Vec::with_capacity(values.len() - 1);
        for a in &values[1..] {
            let s = cast(a, &DataType::Utf8)?;
            let s = s.as_string::<i32>();
            tags.push((num_rows > 0 && s.is_valid(0)).then(|| s.value(0).to_string()));
        }
        let mut picked = vec![false; num_rows];
        for i in draw(num_rows, self.n, &tags) {
            picked[i] = true;
        }
        Ok(Arc::new(BooleanArray::from(picked)))
    }
}

/// `n` of the indexes `0..len` drawn at random (a partial Fisher-Yates shuffle) by a
/// generator seeded with the group's tag values.
pub fn draw(len: usize, n: usize, group: &[Option<String>]) -> Vec<usize> {
    let mut all: Vec<usize> = (0..len).collect();
    if len <= n {
        return all;
    }
    // splitmix64 over an FNV-1a hash of the group's tag values.
    let mut state = group
        .iter()
        .flat_map(|t| t.as_deref().unwrap_or("").bytes().chain([0xff]))
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for i in 0..n {
        let j = i + (next() % (len - i) as u64) as usize;
        all.swap(i, j);
    }
    all.truncate(n);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_group_draws_the_same_rows() {
        let group = [Some("a".to_string())];
        let first = draw(100, 5, &group);
        assert_eq!(first, draw(100, 5, &group));
        assert_eq!(first.len(), 5);
        let mut unique = first.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 5);
        assert_ne!(first, draw(100, 5, &[Some("b".to_string())]));
        assert_eq!(draw(3, 5, &group), [0, 1, 2]);
    }
}
