//! kolokol-crm: storage and the people behind the phones. Reads the engine's types,
//! never calls into the SIP stack.

pub mod access;
pub mod bindings;
pub mod calendar;
pub mod calls;
pub mod duplicates;
pub mod exchange;
pub mod files;
pub mod form;
pub mod journal;
pub mod mail;
pub mod partner_calls;
pub mod partners;
pub mod queues;
pub mod reports;
pub mod rich_text;
pub(crate) mod search;
pub mod settings;
pub mod store;
pub mod table;
pub mod tasks;
pub mod telephony;
pub mod users;
pub mod values;

pub use store::{Store, StoreError};
pub use telephony::RoutingTable;
pub use users::{NewUser, SoftphoneKey, User, UserDirectory};
