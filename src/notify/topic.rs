//! What a subscriber listens to. Stored in the outbox as text (`invoice:<id>`, `wallet:<id>`),
//! typed everywhere else, so no call site spells a topic by hand.

use std::fmt;

use crate::jpp::InvoiceId;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// A BCH invoice: what its checkout page watches.
    Invoice(InvoiceId),
    /// A Lightning wallet, by its id.
    Wallet(String),
    /// Any other name found in the outbox; nothing writes one today, but a row written by a
    /// newer version is still delivered rather than dropped.
    Custom(String),
}

impl Topic {
    /// The topic a stored name stands for.
    pub fn parse(name: &str) -> Topic {
        match name.split_once(':') {
            Some(("invoice", id)) => match id.parse() {
                Ok(id) => Topic::Invoice(id),
                Err(()) => Topic::Custom(name.to_owned()),
            },
            Some(("wallet", id)) => Topic::Wallet(id.to_owned()),
            _ => Topic::Custom(name.to_owned()),
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::Invoice(id) => write!(f, "invoice:{id}"),
            Topic::Wallet(id) => write!(f, "wallet:{id}"),
            Topic::Custom(name) => f.write_str(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_reads_back_as_it_was_written() {
        let id = InvoiceId::random();
        for topic in [
            Topic::Invoice(id),
            Topic::Wallet("3f2a".into()),
            Topic::Custom("something:else".into()),
        ] {
            assert_eq!(Topic::parse(&topic.to_string()), topic);
        }
        assert_eq!(
            Topic::parse("invoice:not-an-id"),
            Topic::Custom("invoice:not-an-id".into())
        );
    }
}
