//! Comparing schemas between pipeline stages.

use arrow_schema::Schema;

/// The same schema, ignoring metadata and nullability: what "matches" means
/// between stages.
pub fn same_fields(a: &Schema, b: &Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields()
            .iter()
            .zip(b.fields().iter())
            .all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type())
}
