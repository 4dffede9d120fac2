//! kolokol-crm: storage and the people behind the phones. Reads the engine's types,
//! never calls into the SIP stack.

pub mod bindings;
pub mod journal;
pub mod queues;
pub mod store;
pub mod telephony;
pub mod users;

pub use store::{Store, StoreError};
pub use telephony::RoutingTable;
pub use users::{NewUser, User, UserDirectory};
