//! Validation of points against their shard's schema: field types that must not change, names
//! that are reserved, tag and field keys that must not collide; the shapes already seen skip
//! the checks.

use super::*;

/// Per shard and measurement: the schema, and the shapes of points already checked against it.
pub(super) type Schemas = HashMap<u64, HashMap<String, Known>>;

/// A measurement's schema in one shard, and the shapes (tag keys; field keys and types) of
/// points that passed [`validate`]. Schemas only grow and every addition had to agree with what
/// was there, so a shape that passed once passes again: such a point skips the checks.
#[derive(Default)]
pub(super) struct Known {
    pub(super) schema: TableSchema,
    pub(super) shapes: HashMap<u64, Vec<Shape>>,
    /// How many shapes are kept (bounded, for measurements whose points vary a lot).
    pub(super) count: usize,
}

pub(super) const MAX_SHAPES: usize = 256;

/// A point's shape: its tag keys, and its field keys with their types. Points of one shape
/// pass or fail a schema check alike, so a check's answer can be kept per shape.
#[derive(PartialEq)]
pub struct Shape {
    tags: Vec<String>,
    fields: Vec<(String, FieldType)>,
}

impl Shape {
    pub fn of(p: &Point<'_>) -> Self {
        Self {
            tags: p.tags.iter().map(|(k, _)| k.to_string()).collect(),
            fields: p
                .fields
                .iter()
                .map(|(k, v)| (k.to_string(), FieldType::of(v)))
                .collect(),
        }
    }

    pub fn matches(&self, p: &Point<'_>) -> bool {
        self.tags.len() == p.tags.len()
            && self.fields.len() == p.fields.len()
            && self.tags.iter().zip(&p.tags).all(|(a, (b, _))| a == b)
            && self
                .fields
                .iter()
                .zip(&p.fields)
                .all(|((a, t), (b, v))| a == b && *t == FieldType::of(v))
    }

    pub fn hash(p: &Point<'_>) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for (k, _) in &p.tags {
            k.hash(&mut h);
        }
        0xffu8.hash(&mut h);
        for (k, v) in &p.fields {
            k.hash(&mut h);
            FieldType::of(v).hash(&mut h);
        }
        h.finish()
    }
}

/// Checks a point against its shard's schema and records new columns. `Err` is 1.x's reason.
pub(super) fn validate(schemas: &mut Schemas, shard: u64, p: &mut Point<'_>) -> Result<(), String> {
    let m = p.measurement.as_ref();
    if p.tags.iter().any(|(k, _)| k == TIME) {
        return Err(format!(
            "invalid tag key: input tag \"{TIME}\" on measurement \"{m}\" is invalid"
        ));
    }
    if p.fields.iter().any(|(k, _)| k == TIME) {
        p.fields.retain(|(k, _)| k != TIME);
        if p.fields.is_empty() {
            return Err(format!(
                "invalid field name: input field \"{TIME}\" on measurement \"{m}\" is invalid"
            ));
        }
    }
    let shard_schemas = schemas.entry(shard).or_default();
    if !shard_schemas.contains_key(m) {
        shard_schemas.insert(m.to_string(), Known::default());
    }
    let Some(known) = shard_schemas.get_mut(m) else {
        return Err(format!(
            "measurement \"{m}\" vanished from its shard's schema"
        ));
    };
    let shape = Shape::hash(p);
    if known
        .shapes
        .get(&shape)
        .is_some_and(|seen| seen.iter().any(|s| s.matches(p)))
    {
        return Ok(());
    }
    let table = &mut known.schema;
    for (k, v) in &p.fields {
        let t = FieldType::of(v);
        if let Some(existing) = table.fields.get(k.as_ref()) {
            if *existing != t {
                return Err(field_type_conflict(m, k, t.name(), existing.name()));
            }
        }
        if table.tags.contains(k.as_ref()) || p.tags.iter().any(|(tk, _)| tk == k) {
            return Err(field_name_conflict(m, k));
        }
    }
    for (k, _) in &p.tags {
        if table.fields.contains_key(k.as_ref()) {
            return Err(tag_key_conflict(m, k));
        }
    }
    for (k, _) in &p.tags {
        if !table.tags.contains(k.as_ref()) {
            table.tags.insert(k.to_string());
        }
    }
    for (k, v) in &p.fields {
        if !table.fields.contains_key(k.as_ref()) {
            table.fields.insert(k.to_string(), FieldType::of(v));
        }
    }
    if known.count < MAX_SHAPES {
        known.shapes.entry(shape).or_default().push(Shape::of(p));
        known.count += 1;
    }
    Ok(())
}

/// 1.x's reason for a field whose type differs from the one its shard has.
pub fn field_type_conflict(m: &str, k: &str, input: &str, existing: &str) -> String {
    format!(
        "field type conflict: input field \"{k}\" on measurement \"{m}\" is type {input}, already exists as type {existing}"
    )
}

/// 1.x's reason for a field named as one of the measurement's tag keys.
pub fn field_name_conflict(m: &str, k: &str) -> String {
    format!("field name conflict: input field \"{k}\" on measurement \"{m}\" is also a tag key")
}

/// 1.x's reason for a tag key named as one of the measurement's fields.
pub fn tag_key_conflict(m: &str, k: &str) -> String {
    format!("tag key conflict: input tag \"{k}\" on measurement \"{m}\" is also a field")
}
