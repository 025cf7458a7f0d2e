package subject

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode"

	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/store"
)

// stateQuery loads everything the guard needs in one round trip: the
// subject row (by primary key), the newest policy version it accepted (the
// last entry of a primary-key range), its flags row (by primary key) and
// its per-purpose rows (by the leading primary-key column), one result row
// per purpose, or one row with NULL purpose columns when there are none.
const stateQuery = `SELECT s.merged_into, s.policy_version, ` + acceptedColumn + `,
	st.restricted, st.restricted_categories, st.marketing_suppressed, st.legal_hold,
	p.purpose, p.consent, p.objection
FROM subjects s
LEFT JOIN subject_state st ON st.subject_id = s.id
LEFT JOIN subject_purpose_state p ON p.subject_id = s.id
WHERE s.id = $1`

// State returns the subject's current state for the guard. A merged id
// answers with the state of the subject it was merged into (SubjectID
// names that one). An unknown id is fault.NotFound, never an empty state:
// an empty state would read as "no objection" for someone Steward does not
// know, and a caller with a wrong id should hear about it. An erased
// subject has an empty state.
func (s *Store) State(ctx context.Context, q store.Q, id string) (*policy.State, error) {
	for range maxMergeHops {
		st, next, err := s.loadState(ctx, q, id)
		if err != nil {
			return nil, err
		}
		if next == "" {
			return st, nil
		}
		id = next
	}
	return nil, fmt.Errorf("subject: state: merge chain of %s is longer than %d", id, maxMergeHops)
}

// queryState runs the State query through a statement prepared once per
// Store: on SQLite preparing the three-way join costs three times as much
// as running it. The statement is prepared only outside a transaction —
// preparing on the pool while a transaction holds the last connection
// would deadlock — and transactions reuse it once it exists.
func (s *Store) queryState(ctx context.Context, q store.Q, id string) (*sql.Rows, error) {
	if s.db == nil {
		return q.QueryContext(ctx, stateQuery, id)
	}
	stmt := s.stateStmt.Load()
	switch v := q.(type) {
	case *store.DB:
		if v != s.db {
			break
		}
		if stmt == nil {
			prepared, err := s.db.PrepareContext(ctx, stateQuery)
			if err != nil {
				return q.QueryContext(ctx, stateQuery, id)
			}
			if s.stateStmt.CompareAndSwap(nil, prepared) {
				stmt = prepared
			} else {
				prepared.Close()
				stmt = s.stateStmt.Load()
			}
		}
		return stmt.QueryContext(ctx, id)
	case *sql.Tx:
		if stmt != nil {
			return v.StmtContext(ctx, stmt).QueryContext(ctx, id)
		}
	}
	return q.QueryContext(ctx, stateQuery, id)
}

func (s *Store) loadState(ctx context.Context, q store.Q, id string) (*policy.State, string, error) {
	rows, err := s.queryState(ctx, q, id)
	if err != nil {
		return nil, "", fmt.Errorf("subject: state: %w", err)
	}
	defer rows.Close()
	st := &policy.State{SubjectID: id, Consents: map[string]bool{}, Objections: map[string]bool{}}
	found := false
	for rows.Next() {
		var merged, cats, purpose sql.NullString
		var recorded int
		var accepted sql.NullInt64
		var restricted, suppressed, hold, consent, objection sql.NullBool
		if err := rows.Scan(&merged, &recorded, &accepted, &restricted, &cats, &suppressed, &hold, &purpose, &consent, &objection); err != nil {
			return nil, "", fmt.Errorf("subject: state: %w", err)
		}
		if merged.Valid && merged.String != "" {
			return nil, merged.String, nil
		}
		if !found {
			found = true
			st.Restricted = restricted.Bool
			if st.Restricted {
				st.RestrictedCategories = splitCategories(cats.String)
			}
			st.MarketingSuppressed = suppressed.Bool
			st.LegalHold = hold.Bool
			st.BoundVersion = max(recorded, int(accepted.Int64))
		}
		if purpose.Valid {
			if consent.Bool {
				st.Consents[purpose.String] = true
			}
			if objection.Bool {
				st.Objections[purpose.String] = true
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("subject: state: %w", err)
	}
	if !found {
		return nil, "", notFound()
	}
	return st, "", nil
}

// acceptedColumn is the newest policy version the subject s accepted, or
// NULL: with the version the subject was first recorded under, the version
// the subject is bound by.
const acceptedColumn = `(SELECT MAX(a.policy_version) FROM subject_policy_acceptances a WHERE a.subject_id = s.id)`

func splitCategories(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// SetConsent records whether consent to purpose is currently given. The
// consent ledger (internal/consent) keeps the evidence; this is the
// current answer the guard reads.
func (s *Store) SetConsent(ctx context.Context, q store.Q, id, purpose string, given bool) error {
	return s.setPurpose(ctx, q, id, purpose, `INSERT INTO subject_purpose_state (subject_id, purpose, consent, consent_at, updated_at) VALUES ($1, $2, $3, $4, $4)
		ON CONFLICT (subject_id, purpose) DO UPDATE SET consent = excluded.consent, consent_at = excluded.consent_at, updated_at = excluded.updated_at`, given)
}

// SetObjection records whether an objection (Art. 21) to purpose is in
// force.
func (s *Store) SetObjection(ctx context.Context, q store.Q, id, purpose string, on bool) error {
	return s.setPurpose(ctx, q, id, purpose, `INSERT INTO subject_purpose_state (subject_id, purpose, objection, objection_at, updated_at) VALUES ($1, $2, $3, $4, $4)
		ON CONFLICT (subject_id, purpose) DO UPDATE SET objection = excluded.objection, objection_at = excluded.objection_at, updated_at = excluded.updated_at`, on)
}

func (s *Store) setPurpose(ctx context.Context, q store.Q, id, purpose, stmt string, v bool) error {
	if err := checkName("purpose", purpose); err != nil {
		return err
	}
	sub, err := s.live(ctx, q, id)
	if err != nil {
		return err
	}
	if _, err := q.ExecContext(ctx, stmt, sub.ID, purpose, v, s.clock.Now()); err != nil {
		return fmt.Errorf("subject: set purpose state: %w", err)
	}
	return nil
}

// SetRestriction places or lifts a restriction of processing (Art. 18).
// categories limits it; none means every category. Lifting clears them.
func (s *Store) SetRestriction(ctx context.Context, q store.Q, id string, on bool, categories []string) error {
	var cats []string
	if on {
		seen := map[string]bool{}
		for _, c := range categories {
			if err := checkName("categories", c); err != nil {
				return err
			}
			if !seen[c] {
				seen[c] = true
				cats = append(cats, c)
			}
		}
		sort.Strings(cats)
	}
	sub, err := s.live(ctx, q, id)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	var at sql.NullTime
	if on {
		at = sql.NullTime{Time: now, Valid: true}
	}
	_, err = q.ExecContext(ctx, `INSERT INTO subject_state (subject_id, restricted, restricted_categories, restricted_at, updated_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (subject_id) DO UPDATE SET restricted = excluded.restricted, restricted_categories = excluded.restricted_categories,
			restricted_at = excluded.restricted_at, updated_at = excluded.updated_at`,
		sub.ID, on, strings.Join(cats, ","), at, now)
	if err != nil {
		return fmt.Errorf("subject: set restriction: %w", err)
	}
	return nil
}

// SetMarketingSuppressed turns direct marketing to the subject off (on) or
// back on. An objection to direct marketing sets it at once.
func (s *Store) SetMarketingSuppressed(ctx context.Context, q store.Q, id string, on bool) error {
	sub, err := s.live(ctx, q, id)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	var at sql.NullTime
	if on {
		at = sql.NullTime{Time: now, Valid: true}
	}
	_, err = q.ExecContext(ctx, `INSERT INTO subject_state (subject_id, marketing_suppressed, marketing_suppressed_at, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (subject_id) DO UPDATE SET marketing_suppressed = excluded.marketing_suppressed,
			marketing_suppressed_at = excluded.marketing_suppressed_at, updated_at = excluded.updated_at`,
		sub.ID, on, at, now)
	if err != nil {
		return fmt.Errorf("subject: set marketing suppression: %w", err)
	}
	return nil
}

const maxReasonLen = 500

// SetLegalHold places (with a reason staff give, never personal data) or
// lifts a legal hold. While it is on, Delete refuses to erase the subject.
func (s *Store) SetLegalHold(ctx context.Context, q store.Q, id string, on bool, reason string) error {
	reason = strings.TrimSpace(reason)
	if on {
		if reason == "" {
			return fault.FieldError("reason", "a legal hold needs a reason")
		}
		if len([]rune(reason)) > maxReasonLen {
			return fault.FieldError("reason", "the reason is longer than %d characters", maxReasonLen)
		}
		if strings.ContainsFunc(reason, unicode.IsControl) {
			return fault.FieldError("reason", "the reason contains a control character")
		}
	} else {
		reason = ""
	}
	sub, err := s.live(ctx, q, id)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	var at sql.NullTime
	if on {
		at = sql.NullTime{Time: now, Valid: true}
	}
	_, err = q.ExecContext(ctx, `INSERT INTO subject_state (subject_id, legal_hold, legal_hold_reason, legal_hold_at, updated_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (subject_id) DO UPDATE SET legal_hold = excluded.legal_hold, legal_hold_reason = excluded.legal_hold_reason,
			legal_hold_at = excluded.legal_hold_at, updated_at = excluded.updated_at`,
		sub.ID, on, reason, at, now)
	if err != nil {
		return fmt.Errorf("subject: set legal hold: %w", err)
	}
	return nil
}

// LegalHold reports whether a legal hold is in force and why.
// fault.NotFound for an unknown subject.
func (s *Store) LegalHold(ctx context.Context, q store.Q, id string) (bool, string, error) {
	for range maxMergeHops {
		sub, err := s.Get(ctx, q, id)
		if err != nil {
			return false, "", err
		}
		if sub.MergedInto != "" {
			id = sub.MergedInto
			continue
		}
		var on bool
		var reason string
		err = q.QueryRowContext(ctx, `SELECT legal_hold, legal_hold_reason FROM subject_state WHERE subject_id = $1`, id).Scan(&on, &reason)
		if errors.Is(err, sql.ErrNoRows) {
			return s.subjectWideHold(ctx, q, id)
		}
		if err != nil {
			return false, "", fmt.Errorf("subject: legal hold: %w", err)
		}
		if !on {
			return s.subjectWideHold(ctx, q, id)
		}
		return on, reason, nil
	}
	return false, "", fmt.Errorf("subject: legal hold: merge chain of %s is longer than %d", id, maxMergeHops)
}

type flags struct {
	restricted   bool
	cats         string
	restrictedAt sql.NullTime
	suppressed   bool
	suppressedAt sql.NullTime
	hold         bool
	holdReason   string
	holdAt       sql.NullTime
	present      bool
}

func loadFlags(ctx context.Context, tx *sql.Tx, id string) (flags, error) {
	var f flags
	err := tx.QueryRowContext(ctx, `SELECT restricted, restricted_categories, restricted_at, marketing_suppressed, marketing_suppressed_at,
		legal_hold, legal_hold_reason, legal_hold_at FROM subject_state WHERE subject_id = $1`, id).
		Scan(&f.restricted, &f.cats, &f.restrictedAt, &f.suppressed, &f.suppressedAt, &f.hold, &f.holdReason, &f.holdAt)
	if errors.Is(err, sql.ErrNoRows) {
		return flags{}, nil
	}
	if err != nil {
		return flags{}, fmt.Errorf("subject: merge: load state: %w", err)
	}
	f.present = true
	return f, nil
}

// earliest returns the earlier of two set times: the combined flag has been
// in force since the first of them.
func earliest(a, b sql.NullTime) sql.NullTime {
	switch {
	case !a.Valid:
		return b
	case !b.Valid:
		return a
	case b.Time.Before(a.Time):
		return b
	}
	return a
}

func (s *Store) mergeFlags(ctx context.Context, tx *sql.Tx, from, into string) error {
	f, err := loadFlags(ctx, tx, from)
	if err != nil || !f.present {
		return err
	}
	i, err := loadFlags(ctx, tx, into)
	if err != nil {
		return err
	}
	m := i
	switch {
	case f.restricted && i.restricted:
		// A restriction of every category (no list) covers the other.
		if f.cats == "" || i.cats == "" {
			m.cats = ""
		} else {
			m.cats = unionCategories(f.cats, i.cats)
		}
		m.restrictedAt = earliest(f.restrictedAt, i.restrictedAt)
	case f.restricted:
		m.restricted, m.cats, m.restrictedAt = true, f.cats, f.restrictedAt
	}
	if f.suppressed {
		m.suppressed = true
		m.suppressedAt = earliest(f.suppressedAt, i.suppressedAt)
	}
	if f.hold {
		m.hold = true
		m.holdAt = earliest(f.holdAt, i.holdAt)
		switch {
		case !i.hold:
			m.holdReason = f.holdReason
		case f.holdReason != i.holdReason:
			m.holdReason = truncateRunes(i.holdReason+"; "+f.holdReason, maxReasonLen)
		}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO subject_state (subject_id, restricted, restricted_categories, restricted_at, marketing_suppressed, marketing_suppressed_at,
			legal_hold, legal_hold_reason, legal_hold_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (subject_id) DO UPDATE SET restricted = excluded.restricted, restricted_categories = excluded.restricted_categories,
			restricted_at = excluded.restricted_at, marketing_suppressed = excluded.marketing_suppressed,
			marketing_suppressed_at = excluded.marketing_suppressed_at, legal_hold = excluded.legal_hold,
			legal_hold_reason = excluded.legal_hold_reason, legal_hold_at = excluded.legal_hold_at, updated_at = excluded.updated_at`,
		into, m.restricted, m.cats, m.restrictedAt, m.suppressed, m.suppressedAt, m.hold, m.holdReason, m.holdAt, s.clock.Now())
	if err != nil {
		return fmt.Errorf("subject: merge state: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM subject_state WHERE subject_id = $1`, from); err != nil {
		return fmt.Errorf("subject: merge state: %w", err)
	}
	return nil
}

func unionCategories(a, b string) string {
	seen := map[string]bool{}
	var out []string
	for _, c := range append(splitCategories(a), splitCategories(b)...) {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

type purposeRow struct {
	consent     bool
	consentAt   sql.NullTime
	objection   bool
	objectionAt sql.NullTime
}

func (s *Store) mergePurposes(ctx context.Context, tx *sql.Tx, from, into string) error {
	rows, err := tx.QueryContext(ctx, `SELECT subject_id, purpose, consent, consent_at, objection, objection_at
		FROM subject_purpose_state WHERE subject_id = $1 OR subject_id = $2`, from, into)
	if err != nil {
		return fmt.Errorf("subject: merge purposes: %w", err)
	}
	byFrom := map[string]purposeRow{}
	byInto := map[string]purposeRow{}
	for rows.Next() {
		var sid, purpose string
		var r purposeRow
		if err := rows.Scan(&sid, &purpose, &r.consent, &r.consentAt, &r.objection, &r.objectionAt); err != nil {
			rows.Close()
			return fmt.Errorf("subject: merge purposes: %w", err)
		}
		if sid == from {
			byFrom[purpose] = r
		} else {
			byInto[purpose] = r
		}
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return fmt.Errorf("subject: merge purposes: %w", err)
	}
	purposes := make([]string, 0, len(byFrom))
	for p := range byFrom {
		purposes = append(purposes, p)
	}
	sort.Strings(purposes)
	now := s.clock.Now()
	for _, p := range purposes {
		f, i := byFrom[p], byInto[p]
		m := i
		// The most recent choice about consent wins, whichever subject
		// made it: a withdrawal after a consent stays a withdrawal.
		if f.consentAt.Valid && (!i.consentAt.Valid || f.consentAt.Time.After(i.consentAt.Time)) {
			m.consent, m.consentAt = f.consent, f.consentAt
		}
		if f.objection {
			if !i.objection {
				m.objectionAt = f.objectionAt
			} else {
				m.objectionAt = earliest(f.objectionAt, i.objectionAt)
			}
			m.objection = true
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO subject_purpose_state (subject_id, purpose, consent, consent_at, objection, objection_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (subject_id, purpose) DO UPDATE SET consent = excluded.consent, consent_at = excluded.consent_at,
				objection = excluded.objection, objection_at = excluded.objection_at, updated_at = excluded.updated_at`,
			into, p, m.consent, m.consentAt, m.objection, m.objectionAt, now)
		if err != nil {
			return fmt.Errorf("subject: merge purposes: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM subject_purpose_state WHERE subject_id = $1`, from); err != nil {
		return fmt.Errorf("subject: merge purposes: %w", err)
	}
	return nil
}
