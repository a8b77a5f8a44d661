//! In-process tests of the UI (written below).
