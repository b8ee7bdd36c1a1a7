//! What paying an invoice is judged by, without I/O: the submission, the outputs, the fee and
//! sighting rules, and the refusals wallets read. The one pay flow that applies them, with the
//! store and the node, is `service::Payments` (`spec/jpp.md` §4).

mod outputs;
mod refusal;
mod rules;
mod submission;

pub use outputs::match_outputs;
pub use refusal::PayError;
pub use rules::{
    fee_meets_rate, judge_already_in_mempool, node_down, rejected, seen_since,
    SMALLEST_P2PKH_UNLOCK_BYTES,
};
pub use submission::{check_memo, check_refunds, Submission, MAX_TX_HEX};
