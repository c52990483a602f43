//! Selecting with an index: a scan predicate's conjuncts on tags evaluated once per run, its
//! time bounds on the pages of the runs left, as a row selection.

use super::*;

impl Runs {
    /// The rows that can satisfy `predicate` (over `table`, the scan's schema).
    pub fn select(&self, predicate: &Arc<dyn PhysicalExpr>, table: &Schema) -> Selected {
        let conjuncts = split_conjunction(predicate);
        let span = self.span(&conjuncts, table);
        let mut keep = vec![true; span.len()];
        let (mut lo, mut hi) = (i64::MIN, i64::MAX);
        let mut uses = Vec::new();
        for c in conjuncts {
            if let Some((l, h)) = time_bounds(c) {
                (lo, hi) = (lo.max(l), hi.min(h));
                uses.push(Use::Pages);
            } else if let Some(mask) = self.runs_matching(c, table, span.clone()) {
                for (k, m) in keep.iter_mut().zip(mask) {
                    *k &= m;
                }
                uses.push(Use::Runs);
            } else if c
                .downcast_ref::<IsNotNullExpr>()
                .is_some_and(|e| e.arg().is::<Column>())
            {
                uses.push(Use::Rows);
            } else {
                uses.push(Use::None);
            }
        }
        let mut ranges: Vec<Range<usize>> = Vec::new();
        let mut push = |r: Range<usize>| match ranges.last_mut() {
            Some(last) if last.end == r.start => last.end = r.end,
            _ => ranges.push(r),
        };
        // Whether every page read lies within the time bounds.
        let mut within = true;
        if lo <= hi {
            for (run, _) in span.clone().zip(&keep).filter(|(_, k)| **k) {
                let (start, end) = (self.starts[run], self.starts[run + 1]);
                if lo == i64::MIN && hi == i64::MAX {
                    push(start..end);
                    continue;
                }
                // The pages that overlap the run, in order.
                let first = self
                    .pages
                    .partition_point(|p| p.0 <= start)
                    .saturating_sub(1);
                for (i, &(page_start, min, max)) in self.pages.iter().enumerate().skip(first) {
                    if page_start >= end {
                        break;
                    }
                    let page_end = self.pages.get(i + 1).map_or(self.rows(), |p| p.0);
                    if max >= lo && min <= hi && page_end > start {
                        push(page_start.max(start)..page_end.min(end));
                        within &= lo <= min && max <= hi;
                    }
                }
            }
        }
        if within {
            for u in &mut uses {
                if *u == Use::Pages {
                    *u = Use::Within;
                }
            }
        }
        Selected {
            selection: RowSelection::from_consecutive_ranges(ranges.into_iter(), self.rows()),
            uses,
            runs: if lo <= hi {
                keep.iter().filter(|k| **k).count()
            } else {
                0
            },
        }
    }

    /// All runs.
    pub(super) fn all(&self) -> Range<usize> {
        0..self.runs()
    }

    /// The runs that `conjuncts` can hold for, as far as a binary search over the runs finds
    /// it: the runs are in order of the file's first sort tag (the one with the most values),
    /// so `tag = 'v'` on it holds for one stretch of them, and a lookup of one host among
    /// 100,000 runs need not judge every run. All runs when no conjunct is such an equality.
    pub(super) fn span(
        &self,
        conjuncts: &[&Arc<dyn PhysicalExpr>],
        table: &Schema,
    ) -> Range<usize> {
        let mut span = self.all();
        for c in conjuncts {
            let Some((column, wanted)) = tag_values(c) else {
                continue;
            };
            let ([value], Ok(at)) = (wanted.as_slice(), self.runs.schema().index_of(column)) else {
                continue;
            };
            let is_tag = table
                .field_with_name(column)
                .is_ok_and(|f| matches!(f.data_type(), DataType::Dictionary(_, _)));
            if !is_tag || !self.ordered.get(at).copied().unwrap_or(false) {
                continue;
            }
            let Some(runs) = self.runs.column(at).as_dictionary_opt::<Int32Type>() else {
                continue;
            };
            let Some(values) = runs.values().as_string_opt::<i32>() else {
                continue;
            };
            let keys = &runs.keys().values()[span.clone()];
            let of = |k: &i32| values.value(*k as usize);
            let lo = keys.partition_point(|k| of(k) < *value);
            let hi = keys.partition_point(|k| of(k) <= *value);
            span = span.start + lo..span.start + hi;
        }
        span
    }

    /// For each run of `span`, whether `conjunct` (of tag columns only, of known expressions)
    /// can hold; `None` when it is not such a conjunct or cannot be evaluated on the runs.
    pub(super) fn runs_matching(
        &self,
        conjunct: &Arc<dyn PhysicalExpr>,
        table: &Schema,
        span: Range<usize>,
    ) -> Option<Vec<bool>> {
        self.runs_equal(conjunct, table, span.clone())
            .or_else(|| self.runs_evaluated(conjunct, table, span))
    }

    /// [`Self::runs_matching`] by evaluating `conjunct` on the runs of `span`.
    pub(super) fn runs_evaluated(
        &self,
        conjunct: &Arc<dyn PhysicalExpr>,
        table: &Schema,
        span: Range<usize>,
    ) -> Option<Vec<bool>> {
        let mut columns: Vec<String> = Vec::new();
        let mut known = true;
        conjunct
            .apply(|e| {
                if let Some(c) = e.downcast_ref::<Column>() {
                    if !columns.iter().any(|n| n == c.name()) {
                        columns.push(c.name().to_string());
                    }
                } else if !known_expr(e) {
                    known = false;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
            .ok()?;
        if !known || columns.is_empty() {
            return None;
        }
        // The runs' values of those columns, typed as the scan has them (a tag this file does
        // not have is null in every run).
        let n = span.len();
        let mut fields = Vec::new();
        let mut arrays = Vec::new();
        for name in &columns {
            let field = table.field_with_name(name).ok()?;
            if !matches!(field.data_type(), DataType::Dictionary(_, _)) {
                return None;
            }
            let array = match self.runs.column_by_name(name) {
                Some(a) if a.data_type() == field.data_type() => a.slice(span.start, n),
                Some(a) => cast(&a.slice(span.start, n), field.data_type()).ok()?,
                None => datafusion::arrow::array::new_null_array(field.data_type(), n),
            };
            fields.push(Field::new(name, field.data_type().clone(), true));
            arrays.push(array);
        }
        let batch = RecordBatch::try_new_with_options(
            Arc::new(Schema::new(fields)),
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(n)),
        )
        .ok()?;
        let rebased = Arc::clone(conjunct)
            .transform_up(|e| match e.downcast_ref::<Column>() {
                Some(c) => {
                    let index = columns.iter().position(|n| n == c.name()).unwrap_or(0);
                    Ok(Transformed::yes(
                        Arc::new(Column::new(c.name(), index)) as Arc<dyn PhysicalExpr>
                    ))
                }
                None => Ok(Transformed::no(e)),
            })
            .ok()?
            .data;
        let values = rebased.evaluate(&batch).ok()?.into_array(n).ok()?;
        let values = values.as_boolean_opt()?;
        Some(
            (0..n)
                .map(|i| values.is_valid(i) && values.value(i))
                .collect(),
        )
    }

    /// [`Self::runs_matching`] for `tag = 'value'`, `tag IN (...)` and ORs of equalities of one
    /// tag (the commonest conditions), without evaluating them on every run's dictionary value:
    /// each value's key is found by binary search, and the runs with those keys are the ones
    /// that match. `None` for any other conjunct.
    pub(super) fn runs_equal(
        &self,
        conjunct: &Arc<dyn PhysicalExpr>,
        table: &Schema,
        span: Range<usize>,
    ) -> Option<Vec<bool>> {
        let (column, wanted) = tag_values(conjunct)?;
        if !matches!(
            table.field_with_name(column).ok()?.data_type(),
            DataType::Dictionary(_, _)
        ) {
            return None;
        }
        let n = span.len();
        let Ok(at) = self.runs.schema().index_of(column) else {
            // The file does not have the tag: it is null in every run, and equals nothing.
            return Some(vec![false; n]);
        };
        let runs = self.runs.column(at).as_dictionary_opt::<Int32Type>()?;
        let values = runs.values().as_string_opt::<i32>()?;
        let sorted = self.sorted.get(at)?;
        let keys: Vec<i32> = wanted
            .iter()
            .filter_map(|v| {
                let i = sorted
                    .binary_search_by(|i| values.value(*i as usize).cmp(v))
                    .ok()?;
                i32::try_from(sorted[i]).ok()
            })
            .collect();
        let in_span = &runs.keys().values()[span.clone()];
        let mut mask: Vec<bool> = match keys.as_slice() {
            [key] => in_span.iter().map(|k| k == key).collect(),
            _ => in_span.iter().map(|k| keys.contains(k)).collect(),
        };
        if let Some(nulls) = runs.keys().nulls() {
            for (m, valid) in mask.iter_mut().zip(nulls.iter().skip(span.start)) {
                *m &= valid;
            }
        }
        Some(mask)
    }
}

/// The tag and values of `tag = 'v'`, `tag IN ('v', ...)` or an OR of such conditions on the
/// same tag: the rows whose tag is one of the values.
pub(super) fn tag_values(e: &Arc<dyn PhysicalExpr>) -> Option<(&str, Vec<&str>)> {
    fn string(l: &Arc<dyn PhysicalExpr>) -> Option<&str> {
        let value = match l.downcast_ref::<Literal>()?.value() {
            ScalarValue::Dictionary(_, v) => v.as_ref(),
            v => v,
        };
        match value {
            ScalarValue::Utf8(Some(v)) => Some(v.as_str()),
            _ => None,
        }
    }
    if let Some(b) = e.downcast_ref::<BinaryExpr>() {
        return match b.op() {
            Operator::Eq => {
                let (c, v) = match (b.left().downcast_ref::<Column>(), string(b.right())) {
                    (Some(c), Some(v)) => (c, v),
                    _ => (b.right().downcast_ref::<Column>()?, string(b.left())?),
                };
                Some((c.name(), vec![v]))
            }
            Operator::Or => {
                let (tag, mut values) = tag_values(b.left())?;
                let (other, more) = tag_values(b.right())?;
                (tag == other).then(|| {
                    values.extend(more);
                    (tag, values)
                })
            }
            _ => None,
        };
    }
    let list = e.downcast_ref::<InListExpr>()?;
    if list.negated() {
        return None;
    }
    let column = list.expr().downcast_ref::<Column>()?;
    let values = list.list().iter().map(string).collect::<Option<Vec<_>>>()?;
    Some((column.name(), values))
}

/// What [`Runs::select`] found.
#[derive(Debug, Clone)]
pub struct Selected {
    /// The rows to read.
    pub selection: RowSelection,
    /// How each conjunct of the predicate ([`split_conjunction`]'s order) was used.
    pub uses: Vec<Use>,
    /// The runs (series) with rows selected, at most.
    pub runs: usize,
}

/// What one scan's series indexes selected, over all its files (shown by `EXPLAIN`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanSelection {
    pub files: usize,
    pub runs: usize,
    pub runs_selected: usize,
    pub rows: usize,
    pub rows_selected: usize,
    /// Whether DataFusion's own pruning was left on (a conjunct the index does not use).
    pub pruning: bool,
}

impl std::fmt::Display for ScanSelection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "files={} series_runs={} → {} rows={} → {} datafusion_pruning={}",
            self.files,
            self.runs,
            self.runs_selected,
            self.rows,
            self.rows_selected,
            if self.pruning { "on" } else { "off" }
        )
    }
}

/// How [`Runs::select`] used a conjunct of a predicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Tags only: the runs it rejects are not read, and every row of the others satisfies it.
    Runs,
    /// Bounds on time: the pages outside them are not read.
    Pages,
    /// Bounds on time that every page read lies within (by the page index's min and max): the
    /// pages outside them are not read, and every row of the others satisfies them.
    Within,
    /// `field IS NOT NULL` (what a raw query of a field asks): left to the scan's row filter;
    /// fields are seldom sparse enough for DataFusion's pruning by null counts to pay for
    /// itself.
    Rows,
    /// Not understood: left to DataFusion.
    None,
}

/// Expressions whose value on a run's tag values is their value on each of its rows: no
/// state, no randomness, nothing but their inputs (the plan cache's stateless expressions,
/// pattern matches, `CASE`, and immutable functions).
pub(super) fn known_expr(e: &Arc<dyn PhysicalExpr>) -> bool {
    crate::plan_cache::stateless(e)
        || e.is::<LikeExpr>()
        || e.is::<CaseExpr>()
        || e.downcast_ref::<datafusion::physical_expr::ScalarFunctionExpr>()
            .is_some_and(|f| {
                matches!(
                    f.fun().signature().volatility,
                    datafusion::logical_expr::Volatility::Immutable
                )
            })
}

/// `time <op> t` (or `t <op> time`) as the inclusive bounds it sets on time.
pub(super) fn time_bounds(c: &Arc<dyn PhysicalExpr>) -> Option<(i64, i64)> {
    let b = c.downcast_ref::<BinaryExpr>()?;
    let time =
        |e: &Arc<dyn PhysicalExpr>| e.downcast_ref::<Column>().is_some_and(|c| c.name() == TIME);
    let value = |e: &Arc<dyn PhysicalExpr>| match e.downcast_ref::<Literal>()?.value() {
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(*v),
        _ => None,
    };
    let (op, t) = if time(b.left()) {
        (*b.op(), value(b.right())?)
    } else if time(b.right()) {
        (b.op().swap()?, value(b.left())?)
    } else {
        return None;
    };
    Some(match op {
        Operator::Eq => (t, t),
        Operator::Gt => (t.checked_add(1)?, i64::MAX),
        Operator::GtEq => (t, i64::MAX),
        Operator::Lt => (i64::MIN, t.checked_sub(1)?),
        Operator::LtEq => (i64::MIN, t),
        _ => return None,
    })
}
