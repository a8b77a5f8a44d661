//! Every bound Tournée enforces, as a named constant with its unit last and a line saying why.
//!
//! This module holds numbers only; the code that enforces each bound lives where the input is read.
//! Relations between limits are checked at compile time below.

/// Longest free-text note on an appointment, in bytes. A note is a reminder, not a file.
pub const NOTE_BYTES_MAX: usize = 2_000;
/// Longest short text (a citizen's display name, a stop label, a unit name), in bytes.
pub const LABEL_BYTES_MAX: usize = 200;
/// Longest address, in bytes.
pub const ADDRESS_BYTES_MAX: usize = 300;
/// Longest identifier chosen by an administrator (unit id, territory code), in bytes.
pub const ADMIN_ID_BYTES_MAX: usize = 64;
/// Longest unit name (`unit add --name`), in bytes: a line of a table, like a stop label.
pub const UNIT_NAME_BYTES_MAX: usize = LABEL_BYTES_MAX;
/// Longest device name (`device enroll --name`), in bytes: it is a column of `device list`,
/// a field of every server log line and the subject of the laptop's certificate.
pub const DEVICE_NAME_BYTES_MAX: usize = 64;
/// Most partners a passage names as present (the programme has about ten).
pub const PASSAGE_PARTNERS_MAX: usize = 8;
/// Longest agent program version a server keeps from Hello (`0.1.0`, `1.12.3-rc.1`).
pub const AGENT_PROGRAM_BYTES_MAX: usize = 32;
/// Most device names a Welcome carries (the unit's laptops, to name who wrote a conflicting
/// value): a unit has a handful; the rest show as "poste n°N".
pub const UNIT_DEVICES_MAX: usize = 64;
/// Longest appointment or request, in minutes: a working day. Anything longer is a typo.
pub const DURATION_MINUTES_MAX: i64 = 12 * 60;
/// How far back an appointment may be recorded, in days: a year covers late data entry.
pub const APPOINTMENT_PAST_DAYS_MAX: i64 = 366;
/// How far ahead an appointment may be planned, in days: two years covers any real plan.
pub const APPOINTMENT_FUTURE_DAYS_MAX: i64 = 2 * 366;
/// Most concurrent values (siblings) one field may hold. Each device adds at most one per
/// concurrent edit; beyond this the field is refused rather than grown without bound.
pub const SIBLINGS_MAX: usize = 64;
/// Most actors in one field's causal context. Only the devices that wrote the field appear in it.
pub const FIELD_CLOCK_ACTORS_MAX: usize = 256;
/// How long a command waits for another process holding the store's write lock, in milliseconds.
pub const STORE_BUSY_WAIT_MS: u64 = 5_000;
/// How long `tournee-server backup` waits for `serve`'s write lock before its snapshot's read
/// transaction starts, in milliseconds (a flight commits in far less).
pub const BACKUP_BUSY_WAIT_MS: u64 = 30_000;
/// Largest file one backup entry holds, in bytes: SQLite's default largest blob (1e9 bytes),
/// and it must fit a zero-blob's `i32` length.
pub const BACKUP_ENTRY_BYTES_MAX: u64 = 1_000_000_000;
const _: () = assert!(BACKUP_ENTRY_BYTES_MAX <= i32::MAX as u64);
/// How far a change's hybrid logical clock may run ahead of the receiver's wall clock, in
/// milliseconds (10 minutes). Further ahead is a misconfigured laptop clock.
pub const HLC_FUTURE_DRIFT_MAX_MS: u64 = 10 * 60 * 1_000;
/// Bits of a hybrid logical clock given to the logical counter (the rest is milliseconds).
pub const HLC_LOGICAL_BITS: u32 = 16;
/// Most changes written by one local user action (a new appointment with its citizen).
pub const LOCAL_ACTION_CHANGES_MAX: usize = 32;
/// Most changes written by one scheduler action on the server: a round edit with all its
/// passages over the longest horizon, one transaction so a round never exists without its
/// passages. Each passage in the plan writes at most its plan fields and an undelete; each
/// one dropped from the plan, a tombstone; plus the round's own fields.
pub const SCHEDULER_ACTION_CHANGES_MAX: usize =
    ROUND_FIELDS_MAX + ROUND_PASSAGES_MAX * (PASSAGE_PLAN_FIELDS_MAX + 1);
/// Most changes applied in one remote batch transaction.
pub const APPLY_BATCH_CHANGES_MAX: usize = 4_096;
/// Most changes of one device applied in one server transaction (a flight of batches).
pub const APPLY_FLIGHT_CHANGES_MAX: usize = SESSION_FLIGHT_BATCHES_MAX * BATCH_CHANGES_MAX;
/// Most agent batches the server applies in one transaction.
pub const SESSION_FLIGHT_BATCHES_MAX: usize = 8;
/// Most bytes of one encoded register state read back from the store.
pub const RECORD_STATE_BYTES_MAX: usize = 256 * 1024;
/// SQLite page cache of the server's store, KiB. SQLite's default (2 MiB) makes a busy server
/// re-read its indexes through the kernel on every lookup (a W2 storm spent most of its CPU
/// copying pages in `pread`).
pub const SERVER_PAGE_CACHE_KIB: i64 = 48 * 1024;
/// WAL pages after which the server's store checkpoints (SQLite's default: 1,000). Fewer,
/// larger checkpoints copy each hot index page once instead of many times. (A background
/// checkpoint thread every 500 ms was tried and made a 400-device storm slower: 62 against
/// 49 ms of server CPU per session.)
pub const SERVER_WAL_CHECKPOINT_PAGES: i64 = 8_192;
/// Largest server changelog row decoded: one row holds at most `BATCH_CHANGES_MAX` changes,
/// each well under 8 KiB (a note, its clock and siblings' dots).
pub const CHANGELOG_ROW_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Most stop windows of one round, in windows: a bus makes a handful of stops a day, so 128
/// covers eighteen a day for a week, while a round's passages over the longest horizon
/// (`ROUND_PASSAGES_MAX`) stay one scheduler transaction of a few seconds.
pub const ROUND_STOPS_MAX: usize = 128;
/// Bytes of one window in a round's stored `stops` field, `STOP_ID@mon@HH:MM-HH:MM`: a
/// hyphenated UUID (36), the weekday code (3), the window (11) and two `@`.
pub const ROUND_STOP_ENCODED_BYTES: usize = 36 + 1 + 3 + 1 + 11;
/// Longest `stops` field of a round, in bytes: every window and its `;` separator. The windows
/// stay one field (one register), so an edit replaces the whole plan at once and two
/// concurrent edits show as two plans, never as a mix of both.
pub const ROUND_STOPS_BYTES_MAX: usize = ROUND_STOPS_MAX * (ROUND_STOP_ENCODED_BYTES + 1);
/// Fields a scheduler action writes on a round record (name, stops, recurrence, validity).
pub const ROUND_FIELDS_MAX: usize = 8;
/// Fields a passage's plan writes when it is created (round, stop, date, planned start and
/// end, status).
pub const PASSAGE_PLAN_FIELDS_MAX: usize = 6;
/// Most passages one round has from today to the horizon, in passages: one a window a week.
pub const ROUND_PASSAGES_MAX: usize = ROUND_STOPS_MAX * HORIZON_WEEKS_MAX as usize;
/// Longest recurrence of a round, in weeks: a yearly visit is the rarest a stop gets.
pub const EVERY_WEEKS_MAX: u32 = 52;
/// Most attendees one collective session counts, in people: a village hall's workshop, not a
/// stadium; a larger number is a typo.
pub const ATTENDEES_MAX: u32 = 500;
/// Most people a person search lists, in persons: more than a screen is a query to refine.
pub const PERSON_SEARCH_RESULTS_MAX: usize = 50;
/// Longest chain of merges followed to a person's surviving record, in records; a longer
/// chain (only a damaged store has one) stops at the last record reached.
pub const PERSON_MERGE_CHAIN_MAX: usize = 64;
/// Shortest id prefix a command accepts for a record id, in hex digits (as git's short ids).
pub const ID_PREFIX_MIN: usize = 8;
/// Default planning horizon of the server's rounds, in weeks: two months of passages is what
/// the conseillers plan against.
pub const HORIZON_WEEKS_DEFAULT: u32 = 8;
/// Longest planning horizon an administrator may set, in weeks: two years; further ahead no
/// round holds, and every round would write thousands of passages.
pub const HORIZON_WEEKS_MAX: u32 = 104;
/// Default number of sync sessions the server serves at once, in sessions; the rest wait
/// their turn (admission control keeps a storm of laptops from exhausting the store thread).
pub const DEFAULT_SESSIONS_MAX: usize = 64;
/// Hex characters of a device's key fingerprint shown by `device list`, in characters: enough
/// to tell devices apart, short enough for a table row.
pub const FINGERPRINT_SHOWN_CHARS: usize = 16;

const _: () = assert!(LABEL_BYTES_MAX < NOTE_BYTES_MAX);
const _: () = assert!(HLC_LOGICAL_BITS < 32);
const _: () = assert!(LOCAL_ACTION_CHANGES_MAX <= APPLY_BATCH_CHANGES_MAX);
const _: () = assert!(LOCAL_ACTION_CHANGES_MAX <= SCHEDULER_ACTION_CHANGES_MAX);
const _: () = assert!(DURATION_MINUTES_MAX > 0);
const _: () = assert!(ROUND_STOPS_MAX >= 100);
const _: () = assert!(ROUND_STOPS_BYTES_MAX <= WIRE_STRING_BYTES_MAX);
const _: () = assert!(ROUND_STOPS_BYTES_MAX * 4 < RECORD_STATE_BYTES_MAX);
const _: () = assert!(HORIZON_WEEKS_DEFAULT >= 1 && HORIZON_WEEKS_DEFAULT <= HORIZON_WEEKS_MAX);

/// Largest frame on the wire, in bytes (length prefix excluded). A batch is cut well below it.
pub const FRAME_BYTES_MAX: usize = 1024 * 1024;
/// Largest payload after inflating one compressed frame, in bytes: bounds a deflate bomb.
pub const FRAME_INFLATED_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Frames smaller than this are sent uncompressed: deflate does not pay below it.
pub const FRAME_COMPRESS_MIN_BYTES: usize = 128;
/// Most changes in one batch message, either way.
pub const BATCH_CHANGES_MAX: usize = 1_024;
/// Most causal-context entries in one batch message, all writes together: eight actors per
/// change on average, far more than a field's writers in practice.
pub const BATCH_CLOCK_ENTRIES_MAX: usize = 8 * BATCH_CHANGES_MAX;
/// Target size of an encoded batch before compression, in bytes: a quarter of
/// `FRAME_BYTES_MAX`, so a batch cut at the target still fits a frame with room to spare.
pub const BATCH_BYTES_TARGET: usize = FRAME_BYTES_MAX / 4;
/// Bytes inflated per read while decompressing a frame: small enough that the buffer never
/// overshoots `FRAME_INFLATED_BYTES_MAX` by much before the bound is checked.
pub const INFLATE_CHUNK_BYTES: usize = 16 * 1024;
/// Most records (runs of changes of one record) in one batch message.
pub const BATCH_RECORDS_MAX: usize = BATCH_CHANGES_MAX;
/// Most rejections reported in one acknowledgement (a batch's worth).
pub const ACK_REJECTIONS_MAX: usize = BATCH_CHANGES_MAX;
/// Longest explanation in a refusal, in bytes: a refusal may quote the refused value, and a
/// batch of refusals must stay far below what the agent can read in one frame.
pub const REJECT_DETAIL_BYTES_MAX: usize = 240;
/// Longest string in any message (a round's stops field or a note), in bytes.
pub const WIRE_STRING_BYTES_MAX: usize = if ROUND_STOPS_BYTES_MAX > NOTE_BYTES_MAX {
    ROUND_STOPS_BYTES_MAX
} else {
    NOTE_BYTES_MAX
};
/// Batches the server queues ahead of the network for one session before it waits.
pub const SESSION_QUEUED_BATCHES_MAX: usize = 4;
/// How long a server waits for a connecting agent's Hello, in milliseconds.
pub const HELLO_TIMEOUT_MS: u64 = 10_000;

const _: () = assert!(BATCH_CHANGES_MAX <= APPLY_BATCH_CHANGES_MAX);
const _: () = assert!(FIELD_CLOCK_ACTORS_MAX <= BATCH_CLOCK_ENTRIES_MAX);
const _: () = assert!(BATCH_BYTES_TARGET < FRAME_BYTES_MAX);
const _: () = assert!(INFLATE_CHUNK_BYTES <= FRAME_INFLATED_BYTES_MAX);
const _: () = assert!(FRAME_BYTES_MAX <= FRAME_INFLATED_BYTES_MAX);
const _: () = assert!(WIRE_STRING_BYTES_MAX * 2 < FRAME_BYTES_MAX);
const _: () =
    assert!((REJECT_DETAIL_BYTES_MAX + 64) * ACK_REJECTIONS_MAX < FRAME_INFLATED_BYTES_MAX);

/// QUIC receive window of one stream, in bytes: two maximal frames in flight. quinn's default
/// (1.25 MB per stream, far more per connection) would let 2,000 laptops pin gigabytes.
pub const QUIC_STREAM_RECEIVE_WINDOW_BYTES: u32 = 2 * FRAME_BYTES_MAX as u32;
/// QUIC receive window of a whole connection, in bytes.
pub const QUIC_CONNECTION_RECEIVE_WINDOW_BYTES: u32 = 2 * QUIC_STREAM_RECEIVE_WINDOW_BYTES;
/// QUIC send window of a connection, in bytes.
pub const QUIC_SEND_WINDOW_BYTES: u64 = 4 * FRAME_BYTES_MAX as u64;
/// Bidirectional streams a peer may open at once: a session uses one.
pub const QUIC_BIDI_STREAMS_MAX: u32 = 2;
/// Unidirectional streams a peer may open: none are used.
pub const QUIC_UNI_STREAMS_MAX: u32 = 0;
/// A connection with no traffic for this long is dead, in milliseconds. Longer than the
/// keep-alive, so a live but quiet daemon connection stays up; short enough that a cut link is
/// noticed and retried.
pub const QUIC_IDLE_TIMEOUT_MS: u32 = 20_000;
/// Initial RTT estimate before the first sample (quinn's default, 333 ms, makes the first
/// retransmission wait 1 s; a rural 4G link is ~200 ms: a lost first packet cost 400 ms more).
pub const QUIC_INITIAL_RTT_MS: u64 = 200;
/// How long `sync` waits after its session for the connection to finish closing.
pub const QUIC_CLOSE_WAIT_MS: u64 = 100;
/// How long the server waits, after writing the Error frame that ends a session, for the
/// agent to acknowledge it before closing the connection (a close discards unsent stream
/// data), in milliseconds. Several round trips of a slow rural link; a peer that never
/// acknowledges holds its admission permit no longer than this.
pub const ERROR_FLUSH_WAIT_MS: u64 = 1_000;
/// Connection attempts quinn queues before the server looks at them (each may buffer datagrams);
/// beyond it new Initials are refused by quinn itself. quinn's default is 65,536.
pub const QUIC_INCOMING_MAX: usize = 1_024;
/// Bytes quinn buffers for one connection attempt not yet accepted (its Initial and 0-RTT).
pub const QUIC_INCOMING_BUFFER_BYTES: u64 = 16 * 1024;
/// Bytes quinn buffers for all connection attempts not yet accepted (quinn's default: 100 MiB).
pub const QUIC_INCOMING_BUFFER_TOTAL_BYTES: u64 = 4 * 1024 * 1024;
/// Handshakes in progress above which the server asks unvalidated addresses for a QUIC Retry
/// (one round trip proving the address) before keeping any state for them: a flood of Initials
/// from addresses that do not answer costs no memory. Below it, a laptop pays no extra round trip.
pub const QUIC_RETRY_ABOVE_HANDSHAKES: usize = 32;
/// Handshakes in progress the server keeps at most, validated or not (about 30 KiB each);
/// further attempts are dropped until some finish or time out.
pub const QUIC_HANDSHAKES_MAX: usize = 512;
/// How often the server logs one summary line of refused, retried and dropped handshakes, in
/// milliseconds.
pub const HANDSHAKE_LOG_INTERVAL_MS: u64 = 10_000;
/// Refused handshakes logged one line each per interval; the rest only counted in the summary.
pub const HANDSHAKE_LOG_LINES_PER_INTERVAL: u32 = 10;
const _: () = assert!(QUIC_RETRY_ABOVE_HANDSHAKES < QUIC_HANDSHAKES_MAX);
const _: () = assert!(QUIC_INCOMING_BUFFER_BYTES <= QUIC_INCOMING_BUFFER_TOTAL_BYTES);
/// Keep-alive interval of an idle connection, in milliseconds.
pub const QUIC_KEEP_ALIVE_MS: u64 = 5_000;
/// How long an agent waits for the QUIC handshake, in milliseconds.
pub const CONNECT_TIMEOUT_MS: u64 = 10_000;
/// First retry delay of the agent daemon after a failed connection, in milliseconds.
pub const BACKOFF_MIN_MS: u64 = 500;
/// Longest retry delay of the agent daemon, in milliseconds (a bus in a dead zone).
pub const BACKOFF_MAX_MS: u64 = 60_000;
/// How often a live session looks for new local commits, in milliseconds.
pub const LOCAL_POLL_MS: u64 = 500;
/// How often the server looks for changes committed by other processes (the scheduler's CLI)
/// and for revoked devices, in milliseconds.
pub const SERVER_POLL_MS: u64 = 500;
/// How often the server checks whether the date changed, to extend rounds' passages to the
/// planning horizon, in milliseconds.
pub const HORIZON_CHECK_MS: u64 = 60_000;
/// How long a clean shutdown waits for sessions to finish, in milliseconds (below systemd's
/// TimeoutStopSec).
pub const SHUTDOWN_GRACE_MS: u64 = 5_000;
/// Bytes read from a QUIC stream per call.
pub const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Default time `tournee-agent sync` gives itself before giving up, in seconds: enough to
/// retry a dropped rural link a few times, short enough for someone waiting at the command.
pub const SYNC_TIMEOUT_DEFAULT_S: u64 = 60;
/// Longest time `tournee-agent sync --timeout` accepts, in seconds: a day. Waiting longer is
/// what the daemon (`run`) is for; an unbounded value overflowed the deadline arithmetic.
pub const SYNC_TIMEOUT_MAX_S: u64 = 24 * 3600;
/// How long a laptop of `tournee-server demo` tries to sync while the server is up, in
/// seconds: the demo's server is local, so this only guards against a hung demo.
pub const DEMO_SYNC_TIMEOUT_S: u64 = 20;
/// How long a laptop of the demo tries while its server is down for maintenance, in seconds:
/// it gives up quickly, as a laptop in a dead zone would.
pub const DEMO_OFFLINE_SYNC_TIMEOUT_S: u64 = 2;
/// Clock offset beyond which `status` warns that the laptop's clock is wrong, in milliseconds.
pub const CLOCK_OFFSET_WARN_MS: i64 = 60_000;

const _: () = assert!(QUIC_KEEP_ALIVE_MS < QUIC_IDLE_TIMEOUT_MS as u64);
const _: () = assert!(BACKOFF_MIN_MS < BACKOFF_MAX_MS);
const _: () = assert!(SYNC_TIMEOUT_DEFAULT_S <= SYNC_TIMEOUT_MAX_S);
const _: () = assert!(DEVICE_NAME_BYTES_MAX <= LABEL_BYTES_MAX);
const _: () = assert!(QUIC_STREAM_RECEIVE_WINDOW_BYTES as usize > FRAME_BYTES_MAX);

/// Most browser sessions the laptop UI keeps at once; the oldest goes first. One person uses
/// one laptop: a handful covers a second browser and a re-login.
pub const UI_SESSIONS_MAX: usize = 8;
/// How long a browser session of the laptop UI lasts, in milliseconds: a working day.
pub const UI_SESSION_LIFETIME_MS: u64 = 12 * 3600 * 1000;
/// How long the one-time login token of `tournee-agent ui` stays valid, in milliseconds.
pub const UI_TOKEN_LIFETIME_MS: u64 = 2 * 60 * 1000;
/// Largest form body the laptop UI reads, in bytes: a walk-in with three requests is < 2 KB.
pub const UI_FORM_BYTES_MAX: usize = 16 * 1024;
/// Most requests one walk-in form records at once.
pub const UI_WALKIN_REQUESTS_MAX: usize = 3;
/// Persons a UI search shows.
pub const UI_SEARCH_RESULTS_MAX: usize = 10;
/// Pending requests the *Demandes en attente* page shows (the most recent; the count says how
/// many wait in all, each person's page shows theirs).
pub const UI_PENDING_SHOWN_MAX: usize = 100;
const _: () = assert!(UI_SEARCH_RESULTS_MAX <= PERSON_SEARCH_RESULTS_MAX);
const _: () = assert!(UI_TOKEN_LIFETIME_MS < UI_SESSION_LIFETIME_MS);

/// How long a console sign-in link of `tournee-server user link` stays valid, in milliseconds:
/// a day, for a link sent by mail to a new scheduler.
pub const CONSOLE_LINK_LIFETIME_MS: u64 = 24 * 3600 * 1000;
/// How long a console session lasts without signing in again, in milliseconds: a working day.
pub const CONSOLE_SESSION_LIFETIME_MS: u64 = 10 * 3600 * 1000;
/// Failed sign-ins in a row before an account is locked for a while.
pub const CONSOLE_LOGIN_FAILURES_MAX: u32 = 5;
/// First lock after `CONSOLE_LOGIN_FAILURES_MAX` failures, in milliseconds; each further
/// failure doubles it, up to `CONSOLE_LOCK_MAX_MS`.
pub const CONSOLE_LOCK_MIN_MS: u64 = 60 * 1000;
/// Longest lock, in milliseconds.
pub const CONSOLE_LOCK_MAX_MS: u64 = 3600 * 1000;
/// Fewest characters of a console password (ANSSI's advice for a password alone is longer
/// still; the lockout bounds guessing).
pub const CONSOLE_PASSWORD_CHARS_MIN: usize = 12;
/// Longest console password, in bytes (Argon2id takes any length; this bounds the work).
pub const CONSOLE_PASSWORD_BYTES_MAX: usize = 256;
/// Longest console user name, in bytes.
pub const CONSOLE_USER_NAME_BYTES_MAX: usize = 64;
/// Most territories one console account names.
pub const CONSOLE_USER_TERRITORIES_MAX: usize = 32;
const _: () = assert!(CONSOLE_LOCK_MIN_MS < CONSOLE_LOCK_MAX_MS);
const _: () = assert!(CONSOLE_PASSWORD_CHARS_MIN <= CONSOLE_PASSWORD_BYTES_MAX);
