//! Knowledge-base snapshots: the entries plus one embedding per example question, versioned by
//! content and persisted so that a process can load them without re-embedding.
//!
//! Layout under a snapshot root folder:
//!
//! ```text
//! <root>/current                      the active version (one line), replaced atomically
//! <root>/<version>/manifest.json      format, version, per-locale encoder/dim/rows/checksum
//! <root>/<version>/entries.json       the entries, a JSON array
//! <root>/<version>/vectors.<locale>.f32  rows × dim little-endian f32, row-major
//! ```
//!
//! The version is the hex SHA-256 (first 128 bits) of the entries and the encoder names per
//! locale ([`content_version`]), so the same knowledge base embedded with the same models always
//! gets the same version folder. A version folder is written under a temporary name and renamed
//! into place; `current` is written to a temporary file and renamed over the old one, so a
//! process polling it ([`SnapshotWatcher`]) never sees a half-written snapshot.
//!
//! Vector rows of a locale follow the entries of that locale in order, and within an entry its
//! questions in order ([`QuestionRef`]), so the files need no row table.
//!
//! * building ([`Snapshot::build`], with an [`Embedder`]) or assembling ([`Snapshot::from_vectors`])
//!   a snapshot, and its content version ([`content_version`]);
//! * saving, loading and publishing it ([`Snapshot::save`], [`Snapshot::load`], [`set_current`]);
//! * watching a root for a new active version ([`SnapshotWatcher`]).

mod build;
mod content;
mod error;
mod store;
mod watcher;

pub use build::Embedder;
pub use content::{content_version, LocaleVectors, QuestionRef, Snapshot, FORMAT_VERSION};
pub use error::SnapshotError;
pub use store::{current_version, set_current, CURRENT_FILE};
pub use watcher::SnapshotWatcher;
