//! The fake mail form, as `faker` pushes it and `mailbin` receives it: a
//! JSON object of seven strings, dated with a day of the current month.

use std::ops::RangeInclusive;

use chrono::{Datelike as _, Days, Local, NaiveDate};
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

/// The days a form may be dated: from the 1st of the current month to
/// today, local time.
pub fn this_month_so_far() -> RangeInclusive<NaiveDate> {
    let today = Local::now().date_naive();
    let first = today - Days::new(u64::from(today.day0()));
    first..=today
}
