// Package subject owns subjects — everyone Steward holds personal data
// about: members with an account, and people known only by a normalised
// email address (commenters, subscribers, requesters) — and the
// subject-state store: each subject's current consents, objections,
// restriction, marketing suppression, legal hold and acceptances of policy
// versions, which the policy guard reads in one indexed query per request.
//
// A subject has an opaque id ("s_" and 20 base32 characters) that other
// tables and the audit log use instead of anything identifying. Subject rows
// are never deleted: erasure (Delete) clears the email and keeps the id as a
// tombstone, so references stay valid and a restored backup can be erased
// again by id.
//
// When a person known only by email signs up, there are two ways to end with
// one subject:
//   - promote: SetKind(id, KindMember) on the email-only subject, which keeps
//     its id, so nothing needs re-pointing; or
//   - merge: Create the member without an email, then Merge(emailOnly,
//     member) in the same transaction. Merge runs the hooks other packages
//     registered with OnMerge (each re-points its own rows), combines the
//     state, records merged_into on the old subject and moves its email to the
//     member when the member has none (the address is unique, so it cannot be
//     on both at once).
//
// State, LegalHold and every setter follow merged_into from a merged id to
// the subject that survived, so a stale id never loses an objection; Get
// returns the merged subject itself, with MergedInto set.
package subject

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"steward/internal/clock"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/registry"
	"steward/internal/store"
)

// Kind says whether a subject has an account.
type Kind string

const (
	// KindMember is a subject with an account.
	KindMember Kind = "member"
	// KindEmailOnly is a person known only by an email address: a
	// commenter, a newsletter subscriber, a requester without an account.
	KindEmailOnly Kind = "email"
)

func (k Kind) valid() bool { return k == KindMember || k == KindEmailOnly }

// Subject is one person Steward holds data about.
type Subject struct {
	ID   string
	Kind Kind
	// HasEmail says the subject holds an address: false for a member
	// without one, a merged or an erased subject. The address itself is
	// sealed; Email opens it through the door.
	HasEmail      bool
	email         door.Sealed
	emailIndex    []byte
	Source        string // where the subject first came from (signup, comment, newsletter, import:seminar…)
	PolicyVersion int    // the policy version in force when the subject was first recorded
	CreatedAt     time.Time
	MergedInto    string    // the subject this one was merged into, or ""
	ErasedAt      time.Time // zero unless erased
}

// Erased reports whether the subject's personal columns were erased.
func (s Subject) Erased() bool { return !s.ErasedAt.IsZero() }

// LogValue keeps the email address out of logs.
func (s Subject) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", s.ID), slog.String("kind", string(s.Kind)))
}

// MergeHook re-points the rows a package owns from one subject to another.
// It runs inside the merge transaction; an error aborts the merge.
type MergeHook func(ctx context.Context, tx *sql.Tx, from, into string) error

// Repoint is the merge hook of a package whose rows simply follow their
// subject: it moves the subject_id of every row of tables from the merged
// subject to the survivor. What was sealed for the merged subject stays
// sealed under the keys it had, which the door still finds. owner names
// the package in errors.
func Repoint(owner string, tables ...string) MergeHook {
	return func(ctx context.Context, tx *sql.Tx, from, into string) error {
		for _, table := range tables {
			if _, err := tx.ExecContext(ctx, `UPDATE `+table+` SET subject_id = $1 WHERE subject_id = $2`, into, from); err != nil {
				return fmt.Errorf("%s: merge: %w", owner, err)
			}
		}
		return nil
	}
}

// Store keeps subjects and their state.
type Store struct {
	db    *store.DB
	clock clock.Clock
	// door seals and opens what the store keeps beside the state (the
	// evidence of acceptances). The door reads subjects' state from this
	// store, so it is built after it and handed over with SealWith.
	door *door.Door

	mu    sync.Mutex
	hooks []MergeHook

	stateStmt atomic.Pointer[sql.Stmt]
}

// NewStore returns a subject store on db. Give it its door with SealWith
// before it records acceptances.
func NewStore(db *store.DB, c clock.Clock) *Store { return &Store{db: db, clock: c} }

// SealWith gives the store the door built on it, at start-up, before the
// first request.
func (s *Store) SealWith(d *door.Door) { s.door = d }

// Door is the door the store was given (nil before SealWith): packages
// built on the store seal through the same door.
func (s *Store) Door() *door.Door { return s.door }

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the schema of module "subject".
func Migrations() store.Migrations {
	return store.Embedded("subject", migrationFiles)
}

// Tables declares the tables of this package for the personal-data
// registry.
func Tables() []registry.Table {
	return append([]registry.Table{
		{
			Name: "subjects", Owner: "subject", Dataset: "subject",
			SubjectColumn: "id", Origin: registry.Provided,
			SourceColumn: "source", PolicyVersionColumn: "policy_version",
			Description: "Everyone we hold data about, known by a random id. When you are erased, your email address is removed and only the bare id stays, so that the erasure can be applied again if an older backup is ever restored.",
			Columns: []registry.Column{
				{Name: "id"},
				{Name: "kind"},
				{Name: "email_sealed", Field: "email", Sensitive: true},
				{Name: "email_index", Field: "email", Hashed: true},
				{Name: "email", Field: "email", Legacy: true},
				{Name: "source"},
				{Name: "policy_version"},
				{Name: "created_at"},
				{Name: "merged_into"},
				{Name: "erased_at"},
			},
		},
		{
			Name: "subject_state", Owner: "subject", Dataset: "privacy_state",
			SubjectColumn: "subject_id", Origin: registry.Provided, Source: "rights-request",
			Description: "Restriction (Art. 18), marketing suppression and legal hold in force for a subject. The flags and the staff-written hold reason name no one; the row is about the subject, so it is exported and erased with them.",
			Columns: []registry.Column{
				{Name: "subject_id"},
				{Name: "restricted"},
				{Name: "restricted_categories"},
				{Name: "restricted_at"},
				{Name: "marketing_suppressed"},
				{Name: "marketing_suppressed_at"},
				{Name: "legal_hold"},
				{Name: "legal_hold_reason"},
				{Name: "legal_hold_at"},
				{Name: "updated_at"},
			},
		},
		{
			Name: "subject_purpose_state", Owner: "subject", Dataset: "purpose_choices",
			SubjectColumn: "subject_id", Origin: registry.Provided, Source: "subject",
			Description: "The consent and objection currently in force per purpose; the consent ledger keeps the evidence of how each came about.",
			Columns: []registry.Column{
				{Name: "subject_id"},
				{Name: "purpose"},
				{Name: "consent", Field: "consent"},
				{Name: "consent_at"},
				{Name: "objection", Field: "consent"},
				{Name: "objection_at"},
				{Name: "updated_at"},
			},
		},
		{
			Name: "subject_policy_acceptances", Owner: "subject", Dataset: "policy_acceptances",
			SubjectColumn: "subject_id", Origin: registry.Provided, SourceColumn: "method",
			PolicyVersionColumn: "policy_version",
			// Proof that a person accepted a reduction of their rights is
			// kept, like other proof of consent, as a legal obligation.
			KeptBecause: "legal-obligation",
			Description: "The person's explicit acceptance of a policy version that reduced their rights, with coarse evidence.",
			Columns: []registry.Column{
				{Name: "subject_id"}, {Name: "policy_version"}, {Name: "policy_hash"}, {Name: "method", Field: "consent"},
				{Name: "ua_family_sealed", Field: "consent", Sensitive: true}, {Name: "network_sealed", Field: "consent", Sensitive: true},
				{Name: "ua_family", Field: "consent", Legacy: true}, {Name: "network", Field: "consent", Legacy: true},
				{Name: "accepted_at"},
			},
		},
	}, HoldTables()...)
}

// maxEmailBytes is the longest address that fits a forward path (RFC 5321
// §4.5.3.1.3 allows 256 octets including the angle brackets).
const maxEmailBytes = 254

// NormalizeEmail returns the form of an email address Steward stores and
// looks up: NFKC-normalised (full-width and other compatibility forms
// become the plain characters they stand for), surrounding spaces trimmed,
// lower-cased, a bare addr-spec that net/mail accepts, with a dotted
// domain and at most 254 bytes. Lower-casing the local part is not what
// RFC 5321 promises, but no mail system in use distinguishes case, and one
// person must not become two subjects.
//
// It refuses what would let two addresses look alike: control characters
// (CR/LF would also inject mail headers), invisible and formatting
// characters (zero-width spaces and joiners, direction marks, soft
// hyphens, variation selectors, fillers), private-use characters, and a
// local part or domain label that mixes scripts, such as a Cyrillic "а"
// among Latin letters. One script per part is fine (алиса@пример.рф), and
// so are the mixtures one writing system uses (Japanese, Korean and
// Chinese with Latin), as in the "highly restrictive" level of UTS #39.
func NormalizeEmail(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fault.FieldError("email", "the email address is not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", fault.FieldError("email", "the email address contains a control character (such as a line break)")
		}
	}
	if len(s) > 4*maxEmailBytes {
		return "", fault.FieldError("email", "the email address is longer than %d bytes", maxEmailBytes)
	}
	s = strings.ToLower(strings.TrimSpace(norm.NFKC.String(s)))
	if !norm.NFKC.IsNormalString(s) {
		// Lower-casing undid the normal form: a rare compatibility
		// character, refused rather than stored in one of two forms.
		return "", fault.FieldError("email", "the email address holds a character with no single normal form")
	}
	if s == "" {
		return "", fault.FieldError("email", "an email address is required")
	}
	if len(s) > maxEmailBytes {
		return "", fault.FieldError("email", "the email address is longer than %d bytes", maxEmailBytes)
	}
	for _, r := range s {
		switch {
		case unicode.IsControl(r):
			return "", fault.FieldError("email", "the email address contains a control character (such as a line break)")
		case invisible(r):
			return "", fault.FieldError("email", "the email address contains an invisible or formatting character (such as a zero-width space or a direction mark)")
		case unicode.IsSpace(r):
			return "", fault.FieldError("email", "the email address contains a space")
		}
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return "", fault.FieldError("email", "the email address needs the form name@example.org")
	}
	local, domain := s[:at], s[at+1:]
	if len(local) > 64 {
		return "", fault.FieldError("email", "the part before @ is longer than 64 bytes")
	}
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") ||
		strings.ContainsAny(domain, "[]") || strings.ContainsFunc(domain, unicode.IsSpace) {
		return "", fault.FieldError("email", "the domain of the email address is not valid")
	}
	if a, b := mixedScripts(local); a != "" {
		return "", fault.FieldError("email", "the part before @ mixes %s and %s letters; a look-alike letter from another alphabet may have slipped in", a, b)
	}
	for _, label := range strings.Split(domain, ".") {
		if a, b := mixedScripts(label); a != "" {
			return "", fault.FieldError("email", "the domain mixes %s and %s letters in one label; a look-alike letter from another alphabet may have slipped in", a, b)
		}
	}
	a, err := parseAddress(s)
	if err != nil || a != s {
		// A display name, a quoted local part or a comment would make the
		// parsed address differ from the input: only a bare address is
		// accepted, so what is stored is exactly what was given.
		return "", fault.FieldError("email", "the email address is not valid")
	}
	return s, nil
}

// invisible reports whether r shows nothing, or changes how its
// neighbours show, without being a space: format characters (Cf: zero-width
// space and joiners, direction marks, soft hyphen), variation selectors,
// the other default-ignorable code points (Hangul fillers, the combining
// grapheme joiner), line and paragraph separators, and private-use
// characters, which no font agrees on.
func invisible(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Co, unicode.Zl, unicode.Zp, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point)
}

// mixedScripts returns two of the scripts whose letters s mixes, in
// alphabetical order, or "" when s keeps to one. Digits and punctuation
// (script Common) and combining marks (Inherited) belong to every script.
// Han may go with Hiragana and Katakana, with Hangul or with Bopomofo, and
// any of these with Latin: the sets UTS #39 allows at its "highly
// restrictive" level.
func mixedScripts(s string) (string, string) {
	var seen []string
	for _, r := range s {
		sc := scriptOf(r)
		if sc == "" || slices.Contains(seen, sc) {
			continue
		}
		seen = append(seen, sc)
	}
	if len(seen) < 2 {
		return "", ""
	}
	for _, allowed := range [][]string{
		{"Latin", "Han", "Hiragana", "Katakana"},
		{"Latin", "Han", "Hangul"},
		{"Latin", "Han", "Bopomofo"},
	} {
		if !slices.ContainsFunc(seen, func(sc string) bool { return !slices.Contains(allowed, sc) }) {
			return "", ""
		}
	}
	slices.Sort(seen)
	return seen[0], seen[1]
}

// commonScripts are tried first: nearly every address is in one of them.
var commonScripts = []string{"Latin", "Common", "Inherited", "Cyrillic", "Greek", "Han", "Hiragana", "Katakana", "Hangul", "Arabic", "Hebrew", "Devanagari", "Thai"}

// scriptOf names the script of r, or "" for Common and Inherited.
func scriptOf(r rune) string {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' {
			return "Latin"
		}
		return ""
	}
	name := ""
	for _, sc := range commonScripts {
		if unicode.Is(unicode.Scripts[sc], r) {
			name = sc
			break
		}
	}
	if name == "" {
		for sc, table := range unicode.Scripts {
			if unicode.Is(table, r) {
				name = sc
				break
			}
		}
	}
	if name == "Common" || name == "Inherited" {
		return ""
	}
	return name
}

func parseAddress(s string) (string, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", err
	}
	if a.Name != "" {
		return "", errors.New("display name")
	}
	return a.Address, nil
}

// newID returns a fresh opaque subject id: "s_" and 20 base32 characters
// (100 random bits).
func newID() string {
	var b [13]byte
	rand.Read(b[:])
	return "s_" + strings.ToLower(base32.StdEncoding.EncodeToString(b[:])[:20])
}

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9_.:-]{0,63}$`)
	sourceRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:/@+-]{0,63}$`)
)

func checkName(field, v string) error {
	if !nameRE.MatchString(v) {
		return fault.FieldError(field, "%s must be 1 to 64 lower-case letters, digits, '-', '_', '.' or ':'", field)
	}
	return nil
}

func checkSource(source string, policyVersion int) error {
	if !sourceRE.MatchString(source) {
		return fault.FieldError("source", "source must be 1 to 64 letters, digits or -_.:/@+ (for example signup or import:seminar)")
	}
	if policyVersion < 0 {
		return fault.FieldError("policy_version", "policy version must not be negative")
	}
	return nil
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func emailTaken() error {
	return &fault.Error{Code: fault.Conflict, Field: "email", Message: "this email address already belongs to another subject"}
}

// Create records a new subject; with an email, sealed for use. An
// email-only subject needs an email; a member may be created without one
// (to merge an email-only subject into it). fault.Conflict when the
// address already belongs to a subject.
func (s *Store) Create(ctx context.Context, q store.Q, d *door.Door, use door.Use, kind Kind, email, source string, policyVersion int) (Subject, error) {
	if !kind.valid() {
		return Subject{}, fault.FieldError("kind", "kind must be member or email")
	}
	var norm string
	if email != "" || kind == KindEmailOnly {
		var err error
		if norm, err = NormalizeEmail(email); err != nil {
			return Subject{}, err
		}
	}
	if err := checkSource(source, policyVersion); err != nil {
		return Subject{}, err
	}
	sub := Subject{ID: newID(), Kind: kind, Source: source, PolicyVersion: policyVersion, CreatedAt: s.clock.Now()}
	var index []byte
	if norm != "" {
		index = d.BlindIndex(emailIndexKind, norm)
	}
	_, err := q.ExecContext(ctx, `INSERT INTO subjects (id, kind, email_index, source, policy_version, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		sub.ID, string(kind), index, source, policyVersion, sub.CreatedAt)
	if store.IsUniqueViolation(err) {
		return Subject{}, emailTaken()
	}
	if err != nil {
		return Subject{}, fmt.Errorf("subject: create: %w", err)
	}
	if norm != "" {
		if sub.email, err = s.sealEmail(ctx, q, d, use, sub.ID, norm); err != nil {
			return Subject{}, err
		}
		sub.HasEmail, sub.emailIndex = true, index
	}
	return sub, nil
}

// EnsureByEmail returns the subject holding the address, creating an
// email-only subject when there is none. created reports whether it did. A
// member holding the address is returned as it is: a member who comments is
// the same person. Safe when two callers race: one creates, both get it.
func (s *Store) EnsureByEmail(ctx context.Context, q store.Q, d *door.Door, use door.Use, email, source string, policyVersion int) (Subject, bool, error) {
	norm, err := NormalizeEmail(email)
	if err != nil {
		return Subject{}, false, err
	}
	if err := checkSource(source, policyVersion); err != nil {
		return Subject{}, false, err
	}
	// ON CONFLICT DO NOTHING rather than insert-then-catch: a unique
	// violation would abort the caller's PostgreSQL transaction.
	id := newID()
	res, err := q.ExecContext(ctx, `INSERT INTO subjects (id, kind, email_index, source, policy_version, created_at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (email_index) DO NOTHING`, id, string(KindEmailOnly), d.BlindIndex(emailIndexKind, norm), source, policyVersion, s.clock.Now())
	if err != nil {
		return Subject{}, false, fmt.Errorf("subject: ensure by email: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return Subject{}, false, fmt.Errorf("subject: ensure by email: %w", err)
	}
	if n == 1 {
		if _, err := s.sealEmail(ctx, q, d, use, id, norm); err != nil {
			return Subject{}, false, err
		}
	}
	sub, err := s.findByIndex(ctx, q, d.BlindIndex(emailIndexKind, norm))
	if err != nil {
		return Subject{}, false, err
	}
	return sub, n == 1, nil
}

const subjectColumns = `id, kind, email_sealed, email_index, source, policy_version, created_at, merged_into, erased_at`

// subjectRow is the scan target of subjectColumns.
type subjectRow struct {
	sub    Subject
	kind   string
	merged sql.NullString
	erased sql.NullTime
}

func (r *subjectRow) dest() []any {
	return []any{&r.sub.ID, &r.kind, &r.sub.email, &r.sub.emailIndex, &r.sub.Source, &r.sub.PolicyVersion, &r.sub.CreatedAt, &r.merged, &r.erased}
}

// subject returns the row scanned last.
func (r *subjectRow) subject() Subject {
	sub := r.sub
	sub.Kind = Kind(r.kind)
	sub.HasEmail = len(sub.emailIndex) > 0
	sub.MergedInto = r.merged.String
	sub.CreatedAt = sub.CreatedAt.UTC()
	sub.ErasedAt = time.Time{}
	if r.erased.Valid {
		sub.ErasedAt = r.erased.Time.UTC()
	}
	return sub
}

func scanSubject(row interface{ Scan(...any) error }) (Subject, error) {
	var r subjectRow
	if err := row.Scan(r.dest()...); err != nil {
		return Subject{}, err
	}
	return r.subject(), nil
}

func notFound() error { return fault.New(fault.NotFound, "no such subject") }

// Get returns the subject with the id, merged and erased ones included.
// fault.NotFound when there is none.
func (s *Store) Get(ctx context.Context, q store.Q, id string) (Subject, error) {
	sub, err := scanSubject(q.QueryRowContext(ctx, `SELECT `+subjectColumns+` FROM subjects WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Subject{}, notFound()
	}
	if err != nil {
		return Subject{}, fmt.Errorf("subject: get: %w", err)
	}
	return sub, nil
}

// FindByEmail returns the subject holding the address (normalised first),
// found by its blind index. fault.NotFound when there is none, or
// fault.Invalid for an address that is not valid.
func (s *Store) FindByEmail(ctx context.Context, q store.Q, d *door.Door, email string) (Subject, error) {
	norm, err := NormalizeEmail(email)
	if err != nil {
		return Subject{}, err
	}
	return s.findByIndex(ctx, q, d.BlindIndex(emailIndexKind, norm))
}

// FindByEmailIndex returns the subject holding the address whose blind
// index is given (EmailIndex), for a package that kept only the index.
func (s *Store) FindByEmailIndex(ctx context.Context, q store.Q, index []byte) (Subject, error) {
	return s.findByIndex(ctx, q, index)
}

func (s *Store) findByIndex(ctx context.Context, q store.Q, index []byte) (Subject, error) {
	sub, err := scanSubject(q.QueryRowContext(ctx, `SELECT `+subjectColumns+` FROM subjects WHERE email_index = $1`, index))
	if errors.Is(err, sql.ErrNoRows) {
		return Subject{}, notFound()
	}
	if err != nil {
		return Subject{}, fmt.Errorf("subject: find by email: %w", err)
	}
	return sub, nil
}

// maxMergeHops bounds how far a merged id is followed; merges never chain
// (Merge refuses an already merged target), so one hop is the most seen.
const maxMergeHops = 8

// live follows merged_into from id to the subject that survived and
// refuses an erased one. fault.NotFound for an unknown id.
func (s *Store) live(ctx context.Context, q store.Q, id string) (Subject, error) {
	for range maxMergeHops {
		sub, err := s.Get(ctx, q, id)
		if err != nil {
			return Subject{}, err
		}
		if sub.MergedInto != "" {
			id = sub.MergedInto
			continue
		}
		if sub.Erased() {
			return Subject{}, fault.New(fault.Conflict, "the subject was erased")
		}
		return sub, nil
	}
	return Subject{}, fmt.Errorf("subject: merge chain of %s is longer than %d", id, maxMergeHops)
}

// SetEmail changes the subject's address, sealed for use. fault.Conflict
// when another subject holds it.
func (s *Store) SetEmail(ctx context.Context, q store.Q, d *door.Door, use door.Use, id, email string) error {
	norm, err := NormalizeEmail(email)
	if err != nil {
		return err
	}
	sub, err := s.live(ctx, q, id)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, `UPDATE subjects SET email_index = $2 WHERE id = $1`, sub.ID, d.BlindIndex(emailIndexKind, norm))
	if store.IsUniqueViolation(err) {
		return emailTaken()
	}
	if err != nil {
		return fmt.Errorf("subject: set email: %w", err)
	}
	_, err = s.sealEmail(ctx, q, d, use, sub.ID, norm)
	return err
}

// SetKind changes whether the subject has an account: an email-only
// subject who signs up becomes a member and keeps its id.
func (s *Store) SetKind(ctx context.Context, q store.Q, id string, k Kind) error {
	if !k.valid() {
		return fault.FieldError("kind", "kind must be member or email")
	}
	sub, err := s.live(ctx, q, id)
	if err != nil {
		return err
	}
	if k == KindEmailOnly && !sub.HasEmail {
		return fault.FieldError("kind", "a subject without an email address cannot be email-only")
	}
	if _, err := q.ExecContext(ctx, `UPDATE subjects SET kind = $2 WHERE id = $1`, sub.ID, string(k)); err != nil {
		return fmt.Errorf("subject: set kind: %w", err)
	}
	return nil
}

// MergedFrom returns the ids of every subject merged, directly or not, into
// id — the rights engine needs them to find append-only rows (the audit
// log) that still name an old id.
func (s *Store) MergedFrom(ctx context.Context, q store.Q, id string) ([]string, error) {
	var out []string
	queue := []string{id}
	for len(queue) > 0 && len(out) < 1000 {
		cur := queue[0]
		queue = queue[1:]
		rows, err := q.QueryContext(ctx, `SELECT id FROM subjects WHERE merged_into = $1 ORDER BY id`, cur)
		if err != nil {
			return nil, fmt.Errorf("subject: merged from: %w", err)
		}
		for rows.Next() {
			var from string
			if err := rows.Scan(&from); err != nil {
				rows.Close()
				return nil, fmt.Errorf("subject: merged from: %w", err)
			}
			out = append(out, from)
			queue = append(queue, from)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("subject: merged from: %w", err)
		}
	}
	return out, nil
}

// Delete erases the subject's personal columns (the email) and its state,
// and keeps the id as a tombstone with erased_at, so rows elsewhere that
// name it stay valid. It is idempotent. fault.Conflict while a legal hold is
// in force: the hold exists to stop exactly this.
func (s *Store) Delete(ctx context.Context, q store.Q, id string) error {
	sub, err := s.Get(ctx, q, id)
	if err != nil {
		return err
	}
	if sub.Erased() {
		return nil
	}
	var hold bool
	err = q.QueryRowContext(ctx, `SELECT legal_hold FROM subject_state WHERE subject_id = $1`, id).Scan(&hold)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("subject: delete: %w", err)
	}
	if !hold {
		if hold, _, err = s.subjectWideHold(ctx, q, id); err != nil {
			return err
		}
	}
	if hold {
		return fault.New(fault.Conflict, "a legal hold is in force on this subject: lift it before erasing")
	}
	for _, stmt := range []string{
		`DELETE FROM subject_purpose_state WHERE subject_id = $1`,
		`DELETE FROM subject_state WHERE subject_id = $1`,
	} {
		if _, err := q.ExecContext(ctx, stmt, id); err != nil {
			return fmt.Errorf("subject: delete: %w", err)
		}
	}
	if _, err := q.ExecContext(ctx, `UPDATE subjects SET email = NULL, email_sealed = NULL, email_index = NULL, erased_at = $2 WHERE id = $1`, id, s.clock.Now()); err != nil {
		return fmt.Errorf("subject: delete: %w", err)
	}
	return nil
}

// OnMerge registers a hook that Merge runs. Register every hook at start-up,
// before the first merge.
func (s *Store) OnMerge(h MergeHook) {
	s.mu.Lock()
	s.hooks = append(s.hooks, h)
	s.mu.Unlock()
}

// Merge folds subject from into subject into, inside tx: it runs every
// registered hook (each package re-points its rows), combines their state
// (objections: union; consents: the most recent choice per purpose wins;
// restriction, marketing suppression and legal hold: either one's holds;
// acceptances of policy versions: both, one per version),
// records merged_into on from and moves from's email to into when into has
// none. The caller commits or rolls back.
func (s *Store) Merge(ctx context.Context, tx *sql.Tx, from, into string) error {
	if from == into {
		return fault.New(fault.Invalid, "a subject cannot be merged into itself")
	}
	lock := ""
	if s.db != nil && s.db.Engine == store.Postgres {
		// Two merges of the same subjects must not interleave; SQLite
		// transactions already hold the single write lock.
		lock = ` FOR UPDATE`
	}
	load := func(id string) (Subject, error) {
		sub, err := scanSubject(tx.QueryRowContext(ctx, `SELECT `+subjectColumns+` FROM subjects WHERE id = $1`+lock, id))
		if errors.Is(err, sql.ErrNoRows) {
			return Subject{}, notFound()
		}
		if err != nil {
			return Subject{}, fmt.Errorf("subject: merge: %w", err)
		}
		if sub.MergedInto != "" {
			return Subject{}, fault.New(fault.Conflict, "subject %s was already merged into another", id)
		}
		if sub.Erased() {
			return Subject{}, fault.New(fault.Conflict, "subject %s was erased", id)
		}
		return sub, nil
	}
	f, err := load(from)
	if err != nil {
		return err
	}
	i, err := load(into)
	if err != nil {
		return err
	}
	s.mu.Lock()
	hooks := append([]MergeHook(nil), s.hooks...)
	s.mu.Unlock()
	for _, h := range hooks {
		if err := h(ctx, tx, from, into); err != nil {
			return fmt.Errorf("subject: merge hook: %w", err)
		}
	}
	if err := s.mergeFlags(ctx, tx, from, into); err != nil {
		return err
	}
	if err := s.mergePurposes(ctx, tx, from, into); err != nil {
		return err
	}
	if err := mergeAcceptances(ctx, tx, from, into); err != nil {
		return err
	}
	if err := mergeHolds(ctx, tx, from, into); err != nil {
		return err
	}
	var index []byte
	if err := tx.QueryRowContext(ctx, `SELECT email_index FROM subjects WHERE id = $1`, from).Scan(&index); err != nil {
		return fmt.Errorf("subject: merge: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE subjects SET merged_into = $2, email_sealed = NULL, email_index = NULL WHERE id = $1`, from, into); err != nil {
		return fmt.Errorf("subject: merge: %w", err)
	}
	if !i.HasEmail && f.HasEmail {
		// The sealed address moves as it is: the door opens what was
		// sealed for a subject merged into the one it reads.
		if _, err := tx.ExecContext(ctx, `UPDATE subjects SET email_sealed = $2, email_index = $3 WHERE id = $1`, into, f.email, index); err != nil {
			return fmt.Errorf("subject: merge: move email: %w", err)
		}
	}
	return nil
}

// NotErased counts the subjects of ids that are not erased or still hold
// an address: what an erasure left of them (the rights engine verifies
// with it).
func (s *Store) NotErased(ctx context.Context, q store.Q, ids []string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	cond, args := s.idsIn("id", ids)
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM subjects WHERE `+cond+` AND (email_index IS NOT NULL OR email_sealed IS NOT NULL OR email IS NOT NULL OR erased_at IS NULL)`,
		args...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("subject: not erased: %w", err)
	}
	return n, nil
}
