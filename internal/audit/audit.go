// Package audit owns the append-only, hash-chained audit log: staff access
// to personal data, sign-ups, logins and their failures, session
// revocations, guard denials, rights-request actions, consent changes,
// disclosures and policy publications. Entries name people only by
// pseudonymous subject id; details are small and refused when they look
// like an email address or an IP address.
//
// Each entry's hash is SHA-256 over the previous entry's hash and a
// canonical encoding of the entry (see Hash), so editing, deleting or
// reordering a row breaks the chain, and Verify says where. Writes are
// serialised — a PostgreSQL advisory lock inside the writing transaction,
// SQLite's single writer — so concurrent processes cannot fork the chain,
// and the sequence number is the head's plus one. Triggers refuse UPDATE,
// DELETE and TRUNCATE of entries.
//
// The limits, stated plainly: the chain proves the log is consistent with
// itself, not that it is complete. Someone with write access to the
// database who drops the triggers and recomputes every hash from an edit
// onwards (the algorithm is public) produces a log that verifies. Deleting
// the newest entries leaves a valid shorter chain; the audit_anchor row
// (the head, rewritten with each entry) exposes that unless it is edited
// too. The defence against both is to keep the head (Report.HeadSeq and
// Report.HeadHash, printed by `steward audit verify`) somewhere the
// database's writers cannot reach, and compare it later.
package audit

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"steward/internal/clock"
	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/registry"
	"steward/internal/store"
)

// Event is what happened, before the log numbers and chains it.
type Event struct {
	Actor   string            // pseudonymous subject id of who acted, "system", or "staff:<subject id>"
	Action  string            // dotted, e.g. "account.signup", "session.login_failed", "guard.denied", "staff.read"
	Subject string            // pseudonymous subject id the event is about, or ""
	Detail  map[string]string // small; never an email, IP, password or token
}

// Entry is one recorded event.
type Entry struct {
	Seq int64
	At  time.Time
	Event
	PrevHash string
	Hash     string
}

// Report is the result of Verify.
type Report struct {
	Entries  int64
	OK       bool
	Problems []string
	// HeadSeq and HeadHash identify the newest entry. Kept outside the
	// database, they let a later Verify notice a rewritten or truncated
	// log that is consistent with itself.
	HeadSeq  int64
	HeadHash string
}

// Log is the audit log.
type Log struct {
	db    *store.DB
	clock clock.Clock
}

// New returns the audit log on db.
func New(db *store.DB, c clock.Clock) *Log { return &Log{db: db, clock: c} }

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the schema of module "audit".
func Migrations() store.Migrations {
	return store.Embedded("audit", migrationFiles)
}

// Tables declares the audit tables for the personal-data registry. The log
// names subjects by id only; it survives their erasure because keeping a
// record of who accessed and changed personal data is a legal obligation
// (GDPR Art. 5(2), 30 and 33), and it is exported in access reports.
func Tables() []registry.Table {
	return []registry.Table{
		{
			Name: "audit_log", Owner: "audit", Dataset: "audit_log",
			SubjectColumn: "subject_id", Origin: registry.Observed, Source: "steward",
			KeptBecause: "legal-obligation",
			Description: "Append-only, hash-chained record of sign-ups, logins, staff reads of personal data, rights-request actions, consent changes, guard denials and policy publications. Names people by pseudonymous subject id only.",
			Columns: []registry.Column{
				{Name: "seq"},
				{Name: "at"},
				{Name: "actor"},
				{Name: "action"},
				{Name: "subject_id"},
				{Name: "detail"},
				{Name: "prev_hash"},
				{Name: "hash"},
			},
		},
		{
			Name: "audit_anchor", Owner: "audit", Origin: registry.System,
			Description: "The head of the audit chain (sequence number and hash), so a truncated tail shows.",
			Columns: []registry.Column{
				{Name: "id"},
				{Name: "seq"},
				{Name: "hash"},
				{Name: "at"},
			},
		},
	}
}

// GenesisHash is the previous hash of the first entry.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// lockKey is the PostgreSQL advisory lock that serialises audit writes
// ("Audit\0\0\0").
const lockKey = 0x4175646974000000

// Hash is the chain hash of an entry: the hex SHA-256 of the previous
// hash followed by the JSON array [seq, at (RFC 3339 with nanoseconds,
// UTC), actor, action, subject, detail (an object, keys sorted)]. A JSON
// array keeps field boundaries unambiguous; anyone can recompute it to
// check a log independently.
func Hash(prevHash string, seq int64, at time.Time, e Event) string {
	h := sha256.New()
	h.Write([]byte(prevHash))
	h.Write(canonical(seq, at, e))
	return hex.EncodeToString(h.Sum(nil))
}

func canonical(seq int64, at time.Time, e Event) []byte {
	detail := e.Detail
	if detail == nil {
		detail = map[string]string{}
	}
	// encoding/json sorts map keys, and nothing in the array can fail to
	// encode.
	b, _ := json.Marshal([]any{seq, at.UTC().Format(time.RFC3339Nano), e.Actor, e.Action, e.Subject, detail})
	return b
}

func encodeDetail(d map[string]string) string {
	if d == nil {
		d = map[string]string{}
	}
	b, _ := json.Marshal(d)
	return string(b)
}

var (
	actionRE    = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)
	actorRE     = regexp.MustCompile(`^[a-z][a-z0-9_-]*(:[A-Za-z0-9_-]+)?$`)
	subjectRE   = regexp.MustCompile(`^[A-Za-z0-9_:-]+$`)
	detailKeyRE = regexp.MustCompile(`^[a-z][a-z0-9_.]*$`)
	emailishRE  = regexp.MustCompile(`\S@\S`)
)

// secretKeys are detail keys that announce a value the log must never hold.
var secretKeys = []string{"password", "passwd", "token", "secret", "email", "ip", "ip_address", "card", "card_number"}

const (
	maxDetailKeys  = 32
	maxDetailValue = 512
)

// Validate checks an event the way Record does, so callers can refuse bad
// input before they start a transaction.
func (e Event) Validate() error {
	if len(e.Actor) > 80 || !actorRE.MatchString(e.Actor) || looksLikeIP(e.Actor) {
		return fault.FieldError("actor", "audit actor %q must be a subject id, \"system\" or \"staff:<subject id>\"", clip(e.Actor))
	}
	if len(e.Action) > 64 || !actionRE.MatchString(e.Action) {
		return fault.FieldError("action", "audit action %q must be dotted lower-case words, like account.signup", clip(e.Action))
	}
	if e.Subject != "" && (len(e.Subject) > 80 || !subjectRE.MatchString(e.Subject) || looksLikeIP(e.Subject)) {
		return fault.FieldError("subject", "audit subject must be a pseudonymous subject id")
	}
	if len(e.Detail) > maxDetailKeys {
		return fault.FieldError("detail", "audit detail has %d keys; at most %d", len(e.Detail), maxDetailKeys)
	}
	for k, v := range e.Detail {
		if len(k) > 64 || !detailKeyRE.MatchString(k) {
			return fault.FieldError("detail", "audit detail key %q must be lower-case letters, digits, '_' or '.'", clip(k))
		}
		for _, s := range secretKeys {
			if k == s || strings.HasSuffix(k, "_"+s) || strings.HasSuffix(k, "."+s) {
				return fault.FieldError("detail."+k, "audit detail %q names a value the audit log never holds (password, token, secret, email, IP, card)", k)
			}
		}
		if len(v) > maxDetailValue || !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl) {
			return fault.FieldError("detail."+k, "audit detail %q must be valid UTF-8 without control characters, at most %d bytes", k, maxDetailValue)
		}
		if emailishRE.MatchString(v) {
			return fault.FieldError("detail."+k, "audit detail %q looks like it holds an email address; the audit log names people by subject id only", k)
		}
		if looksLikeIP(v) {
			return fault.FieldError("detail."+k, "audit detail %q holds what looks like an IP address; the audit log never stores one", k)
		}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// looksLikeIP reports whether any run of hex digits, dots and colons in s
// parses as an IPv4 or IPv6 address. It errs on the side of refusing (a
// four-part version number is refused too).
func looksLikeIP(s string) bool {
	isIPChar := func(r rune) bool {
		return r == '.' || r == ':' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'f') || ('A' <= r && r <= 'F')
	}
	for _, tok := range strings.FieldsFunc(s, func(r rune) bool { return !isIPChar(r) }) {
		if !strings.ContainsAny(tok, ".:") {
			continue
		}
		// Sentence punctuation around an address ("from 10.0.0.1.") must
		// not hide it; "::1" must keep its colons.
		for _, c := range [...]string{tok, strings.Trim(tok, "."), strings.Trim(tok, ".:")} {
			if _, err := netip.ParseAddr(c); err == nil {
				return true
			}
		}
		if _, err := netip.ParseAddrPort(tok); err == nil {
			return true
		}
		// An IPv4 address with a port ("10.1.2.3:8080") or glued to other
		// colon-separated text.
		for part := range strings.SplitSeq(tok, ":") {
			if a, err := netip.ParseAddr(part); err == nil && a.Is4() {
				return true
			}
		}
	}
	return false
}

// Append records an event in a transaction of its own.
func (l *Log) Append(ctx context.Context, e Event) error { return l.Record(ctx, l.db, e) }

// Record appends an event. With q a *sql.Tx it writes inside the caller's
// transaction (so the entry commits or rolls back with what it records)
// and, on PostgreSQL, holds the audit lock until that transaction ends:
// record late in a transaction. With anything else it runs its own
// transaction on the log's database.
func (l *Log) Record(ctx context.Context, q store.Q, e Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if tx, ok := q.(*sql.Tx); ok {
		return l.append(ctx, tx, e, false)
	}
	return l.db.InTx(ctx, func(tx *sql.Tx) error { return l.append(ctx, tx, e, true) })
}

// RecordDenial records a guard denial in its own transaction; it
// implements policy.DenialRecorder. Because it opens its own transaction,
// the guard must not be asked while the same goroutine holds a SQLite
// write transaction (it would wait for the busy timeout) or a transaction
// that already recorded an audit entry on PostgreSQL (it gives up after
// the lock timeout).
func (l *Log) RecordDenial(ctx context.Context, d policy.Denial) error {
	detail := map[string]string{"purpose": d.Purpose, "category": d.Category, "reason": d.Reason.String()}
	if d.Count > 0 {
		detail["count"] = strconv.Itoa(d.Count)
		detail["minute"] = d.Minute
	}
	actor := d.Actor
	if actor == "" || actor == "subject" {
		actor = "system"
		if d.Actor == "subject" {
			actor = d.SubjectID
		}
	}
	return l.Record(ctx, l.db, Event{
		Actor:   actor,
		Action:  "guard.denied",
		Subject: d.SubjectID,
		Detail:  detail,
	})
}

var _ policy.DenialRecorder = (*Log)(nil)

func (l *Log) append(ctx context.Context, tx *sql.Tx, e Event, own bool) error {
	if l.db.Engine == store.Postgres {
		if own {
			// Our own transaction holds nothing yet; bound the wait so a
			// caller that already holds the lock gets an error, not a hang.
			if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '10s'`); err != nil {
				return fmt.Errorf("audit: lock timeout: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(lockKey)); err != nil {
			return fmt.Errorf("audit: lock: %w", err)
		}
	}
	seq, prev := int64(1), GenesisHash
	var headAt time.Time
	err := tx.QueryRowContext(ctx, `SELECT seq, at, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&seq, &headAt, &prev)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		seq, prev = 1, GenesisHash
	case err != nil:
		return fmt.Errorf("audit: read head: %w", err)
	default:
		seq++
	}
	// The time is taken under the lock and never goes back, so seq order
	// and time order agree and Verify can treat a disagreement as tampering.
	at := l.clock.Now()
	if at.Before(headAt) {
		at = headAt.UTC()
	}
	hash := Hash(prev, seq, at, e)
	var subject any
	if e.Subject != "" {
		subject = e.Subject
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_log (seq, at, actor, action, subject_id, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		seq, at, e.Actor, e.Action, subject, encodeDetail(e.Detail), prev, hash); err != nil {
		return fmt.Errorf("audit: append: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_anchor (id, seq, hash, at) VALUES (1, $1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, at = excluded.at`, seq, hash, at); err != nil {
		return fmt.Errorf("audit: anchor: %w", err)
	}
	return nil
}

const entryColumns = `seq, at, actor, action, subject_id, detail, prev_hash, hash`

type rawEntry struct {
	Entry
	detail  string
	badJSON bool
}

func scanEntry(rows *sql.Rows) (rawEntry, error) {
	var r rawEntry
	var subject sql.NullString
	if err := rows.Scan(&r.Seq, &r.At, &r.Actor, &r.Action, &subject, &r.detail, &r.PrevHash, &r.Hash); err != nil {
		return rawEntry{}, err
	}
	r.At = r.At.UTC()
	r.Subject = subject.String
	r.Detail = map[string]string{}
	if err := json.Unmarshal([]byte(r.detail), &r.Detail); err != nil {
		r.badJSON = true
	}
	return r, nil
}

func (l *Log) query(ctx context.Context, q store.Q, query string, args ...any) ([]Entry, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("audit: list: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		r, err := scanEntry(rows)
		if err != nil {
			return nil, fmt.Errorf("audit: list: %w", err)
		}
		out = append(out, r.Entry)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: list: %w", err)
	}
	return out, nil
}

// List returns up to limit entries older than beforeSeq (all when
// beforeSeq <= 0), newest first. limit defaults to 50 and is capped at
// 1000.
func (l *Log) List(ctx context.Context, beforeSeq int64, limit int) ([]Entry, error) {
	if beforeSeq <= 0 {
		beforeSeq = math.MaxInt64
	}
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 1000)
	return l.query(ctx, l.db, `SELECT `+entryColumns+` FROM audit_log WHERE seq < $1 ORDER BY seq DESC LIMIT $2`, beforeSeq, limit)
}

// ForSubject returns every entry about the subject or by them (as
// themselves or as staff), newest first: their part of an access report.
func (l *Log) ForSubject(ctx context.Context, q store.Q, subjectID string) ([]Entry, error) {
	if subjectID == "" {
		return nil, fault.FieldError("subject", "a subject id is required")
	}
	return l.query(ctx, q, `SELECT `+entryColumns+` FROM audit_log WHERE subject_id = $1 OR actor = $1 OR actor = $2 ORDER BY seq DESC`,
		subjectID, "staff:"+subjectID)
}

const maxProblems = 1000

// Verify walks the whole log in sequence order and reports every entry
// whose hash does not match its contents (edited), every gap in the
// sequence or broken link to the previous entry (deleted or reordered),
// every entry older than the one before it (reordered, or its time
// edited), and a head that disagrees with the anchor (tail truncated, or
// rows added behind the log's back). See the package doc for what no
// self-contained check can find.
func (l *Log) Verify(ctx context.Context) (Report, error) {
	var rep Report
	var problems []string
	more := 0
	add := func(format string, args ...any) {
		if len(problems) < maxProblems {
			problems = append(problems, fmt.Sprintf(format, args...))
		} else {
			more++
		}
	}
	// One read-only snapshot for the log and its anchor: read apart, an
	// entry committed in between would look like a truncation or an
	// insertion. A read-only transaction on SQLite is a deferred one, so
	// it does not take the write lock.
	opts := &sql.TxOptions{ReadOnly: true}
	if l.db.Engine == store.Postgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := l.db.BeginTx(ctx, opts)
	if err != nil {
		return Report{}, fmt.Errorf("audit: verify: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT `+entryColumns+` FROM audit_log ORDER BY seq`)
	if err != nil {
		return Report{}, fmt.Errorf("audit: verify: %w", err)
	}
	defer rows.Close()
	var prev *rawEntry
	for rows.Next() {
		r, err := scanEntry(rows)
		if err != nil {
			return Report{}, fmt.Errorf("audit: verify: %w", err)
		}
		rep.Entries++
		switch {
		case prev == nil && r.Seq != 1:
			add("entries before %d are missing (deleted from the start)", r.Seq)
		case prev != nil && r.Seq != prev.Seq+1:
			add("gap between %d and %d (deleted)", prev.Seq, r.Seq)
		case prev == nil && r.PrevHash != GenesisHash:
			add("entry %d: prev_hash is not the genesis hash (edited)", r.Seq)
		case prev != nil && r.PrevHash != prev.Hash:
			add("entry %d: prev_hash does not match entry %d (deleted, reordered or edited)", r.Seq, prev.Seq)
		}
		if r.badJSON {
			add("entry %d: detail is not valid JSON (edited)", r.Seq)
		} else if Hash(r.PrevHash, r.Seq, r.At, r.Event) != r.Hash || encodeDetail(r.Detail) != r.detail {
			add("entry %d: hash mismatch (edited)", r.Seq)
		}
		if prev != nil && r.At.Before(prev.At) {
			add("entry %d out of order: its time %s is before entry %d's %s", r.Seq, r.At.Format(time.RFC3339Nano), prev.Seq, prev.At.Format(time.RFC3339Nano))
		}
		prev = &r
	}
	if err := rows.Err(); err != nil {
		return Report{}, fmt.Errorf("audit: verify: %w", err)
	}
	rows.Close()
	if prev != nil {
		rep.HeadSeq, rep.HeadHash = prev.Seq, prev.Hash
	}

	var anchorSeq int64
	var anchorHash string
	err = tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_anchor WHERE id = 1`).Scan(&anchorSeq, &anchorHash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if rep.Entries > 0 {
			add("the anchor is missing (deleted): a truncated tail cannot be detected without it")
		}
	case err != nil:
		return Report{}, fmt.Errorf("audit: verify: anchor: %w", err)
	case anchorSeq > rep.HeadSeq:
		add("the log ends at entry %d but the anchor records entry %d (tail truncated)", rep.HeadSeq, anchorSeq)
	case anchorSeq < rep.HeadSeq:
		add("entries after %d were not written through the log, whose anchor records %d as the head (inserted)", anchorSeq, anchorSeq)
	case anchorHash != rep.HeadHash:
		add("entry %d does not match the anchor's hash (edited)", anchorSeq)
	}
	if more > 0 {
		problems = append(problems, fmt.Sprintf("and %d more problems", more))
	}
	rep.Problems = problems
	rep.OK = len(problems) == 0
	return rep, nil
}
