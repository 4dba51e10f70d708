//! The fake mail form, as `faker` pushes it and `mailbin` receives it: a
//! JSON object of seven strings, dated `YYYYMMDD`.

use serde::Serialize;

/// Where every form says it was posted.
pub const SERVICE_URI: &str = "http://www.voisietequi.it/";

/// How `created_at` writes a date: `YYYYMMDD`.
pub const DATE_FORMAT: &str = "%Y%m%d";

/// One mail form post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Form {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    /// The day the form was posted, `YYYYMMDD`.
    pub created_at: String,
    /// The address it was posted from, IPv4 or IPv6.
    pub ip: String,
    pub user_agent: String,
    pub service_uri: String,
}
