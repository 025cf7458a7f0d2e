package notice

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"steward/internal/audit"
	"steward/internal/consent"
	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/store"
)

// loadVersions reads the published versions once; versions are published
// only at start, before Reconcile, so the cache stays right for the life
// of the process.
func (s *Service) loadVersions(ctx context.Context) error {
	s.mu.Lock()
	loaded := s.versions != nil
	s.mu.Unlock()
	if loaded {
		return nil
	}
	vs, err := policy.List(ctx, s.d.DB)
	if err != nil {
		return fmt.Errorf("notice: versions: %w", err)
	}
	if vs == nil {
		vs = []policy.Version{}
	}
	s.mu.Lock()
	s.versions = vs
	s.mu.Unlock()
	return nil
}

func (s *Service) version(n int) (policy.Version, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.versions {
		if v.Number == n {
			return v, true
		}
	}
	return policy.Version{}, false
}

// reducing returns the versions after base up to the version in force
// that reduce rights, oldest first — the changes a person first recorded
// under (or last accepting) base has not accepted.
func (s *Service) reducing(base int) []policy.Version {
	if !s.d.Policy.Policy.Changes.SignificantRequiresConsent {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []policy.Version
	for i := len(s.versions) - 1; i >= 0; i-- {
		v := s.versions[i]
		if v.Number > base && v.Number <= s.d.Policy.Number() && v.ReducesRights {
			out = append(out, v)
		}
	}
	return out
}

// stricter returns the guard for a person whose last accepted version is
// base: the stricter of base and the version in force, cached per base.
func (s *Service) stricter(ctx context.Context, base int) (*policy.Guard, error) {
	s.mu.Lock()
	g, ok := s.guards[base]
	s.mu.Unlock()
	if ok {
		return g, nil
	}
	v, err := policy.Get(ctx, s.d.DB, base)
	if err != nil {
		return nil, fmt.Errorf("notice: version %d: %w", base, err)
	}
	old, err := v.Policy()
	if err != nil {
		// A version this binary cannot read: nothing is known to be
		// stricter, so keep the current guard but say so.
		s.d.Log.Warn("notice: cannot parse an earlier policy version; applying the current one", "version", base, "err", err)
		g = s.current
	} else {
		g = s.current.Stricter(policy.NewGuard(old, nil))
	}
	s.mu.Lock()
	s.guards[base] = g
	s.mu.Unlock()
	return g, nil
}

// base is the newest version the subject is bound by: the one they were
// first recorded under, or a later one they accepted.
func (s *Service) base(ctx context.Context, q store.Q, subjectID string) (int, error) {
	sub, err := s.d.Subjects.Get(ctx, q, subjectID)
	if err != nil {
		return 0, err
	}
	var accepted sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT MAX(policy_version) FROM policy_acceptances WHERE subject_id = $1`, sub.ID).Scan(&accepted); err != nil {
		return 0, fmt.Errorf("notice: acceptances: %w", err)
	}
	return max(sub.PolicyVersion, int(accepted.Int64)), nil
}

// GuardFor returns the guard that applies to a subject: the policy in
// force, or for someone who has not accepted a change that reduced their
// rights, the stricter of the version they are bound by and the current
// one.
func (s *Service) GuardFor(ctx context.Context, q store.Q, subjectID string) (*policy.Guard, error) {
	if err := s.loadVersions(ctx); err != nil {
		return nil, err
	}
	if len(s.reducing(0)) == 0 {
		return s.current, nil
	}
	base, err := s.base(ctx, q, subjectID)
	if err != nil {
		return nil, err
	}
	if base <= 0 || len(s.reducing(base)) == 0 {
		return s.current, nil
	}
	return s.stricter(ctx, base)
}

// GuardsFor is GuardFor for a batch (it satisfies newsletter.GuardSource).
// With no reducing change published it costs nothing; otherwise it reads
// the batch's acceptances in one query.
func (s *Service) GuardsFor(ctx context.Context, q store.Q, ids []string) (func(string) *policy.Guard, error) {
	if err := s.loadVersions(ctx); err != nil {
		return nil, err
	}
	if len(s.reducing(0)) == 0 || len(ids) == 0 {
		return func(string) *policy.Guard { return s.current }, nil
	}
	accepted := make(map[string]int, len(ids))
	const chunk = 200
	for start := 0; start < len(ids); start += chunk {
		part := ids[start:min(start+chunk, len(ids))]
		marks := make([]string, len(part))
		args := make([]any, len(part))
		for i, id := range part {
			marks[i] = "$" + strconv.Itoa(i+1)
			args[i] = id
		}
		rows, err := q.QueryContext(ctx, `SELECT subject_id, MAX(policy_version) FROM policy_acceptances WHERE subject_id IN (`+strings.Join(marks, ", ")+`) GROUP BY subject_id`, args...)
		if err != nil {
			return nil, fmt.Errorf("notice: acceptances: %w", err)
		}
		for rows.Next() {
			var id string
			var v int
			if err := rows.Scan(&id, &v); err != nil {
				rows.Close()
				return nil, fmt.Errorf("notice: acceptances: %w", err)
			}
			accepted[id] = v
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("notice: acceptances: %w", err)
		}
	}
	versions := make(map[string]int, len(ids))
	subs, err := s.d.Subjects.Subjects(ctx, q, ids)
	if err != nil {
		return nil, fmt.Errorf("notice: subjects: %w", err)
	}
	for id, sub := range subs {
		versions[id] = sub.PolicyVersion
	}
	byID := make(map[string]*policy.Guard, len(ids))
	for id, v := range versions {
		base := max(v, accepted[id])
		if base <= 0 || len(s.reducing(base)) == 0 {
			continue
		}
		g, err := s.stricter(ctx, base)
		if err != nil {
			return nil, err
		}
		byID[id] = g
	}
	return func(id string) *policy.Guard {
		if g, ok := byID[id]; ok {
			return g
		}
		return s.current
	}, nil
}

// PendingChange is a change of the policy that reduced rights and waits
// for the person's acceptance.
type PendingChange struct {
	Version       int       `json:"version"`
	EffectiveDate time.Time `json:"effective_date"`
	Reasons       []string  `json:"reasons"`
	URL           string    `json:"url"`
}

// Pending returns the changes the subject has not accepted, oldest first
// (empty when none, or when the policy does not ask for acceptance).
func (s *Service) Pending(ctx context.Context, q store.Q, subjectID string) ([]PendingChange, error) {
	if err := s.loadVersions(ctx); err != nil {
		return nil, err
	}
	if len(s.reducing(0)) == 0 {
		return []PendingChange{}, nil
	}
	base, err := s.base(ctx, q, subjectID)
	if err != nil {
		return nil, err
	}
	out := []PendingChange{}
	for _, v := range s.reducing(base) {
		out = append(out, PendingChange{Version: v.Number, EffectiveDate: v.EffectiveDate, Reasons: v.Reasons, URL: s.policyURL(v.Number)})
	}
	return out, nil
}

// Accept records a member's explicit acceptance of the version in force
// (and so of every change before it). It is idempotent. fault.Conflict
// when there is nothing to accept or version is not the one in force (the
// person must accept what they were shown).
func (s *Service) Accept(ctx context.Context, subjectID string, version int, method consent.Method, ev consent.Evidence) error {
	if err := s.loadVersions(ctx); err != nil {
		return err
	}
	if version != s.d.Policy.Number() {
		return fault.FieldError("version", "only the policy version in force (%d) can be accepted", s.d.Policy.Number())
	}
	return s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		base, err := s.base(ctx, tx, subjectID)
		if err != nil {
			return err
		}
		if len(s.reducing(base)) == 0 {
			return nil // nothing waits for acceptance: accepting again changes nothing
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO policy_acceptances (subject_id, policy_version, policy_hash, method, ua_family, network, accepted_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (subject_id, policy_version) DO NOTHING`,
			subjectID, version, s.d.Policy.Policy.Hash(), string(method), ev.UserAgentFamily, ev.Network, s.d.Clock.Now()); err != nil {
			return fmt.Errorf("notice: accept: %w", err)
		}
		if s.d.Audit == nil {
			return nil
		}
		return s.d.Audit.Record(ctx, tx, audit.Event{Actor: subjectID, Action: "policy.accepted", Subject: subjectID,
			Detail: map[string]string{"policy_version": strconv.Itoa(version), "method": string(method)}})
	})
}

// Acceptance is one recorded acceptance, for access and export.
type Acceptance struct {
	PolicyVersion int              `json:"policy_version"`
	PolicyHash    string           `json:"policy_hash"`
	Method        string           `json:"method"`
	Evidence      consent.Evidence `json:"evidence"`
	AcceptedAt    time.Time        `json:"accepted_at"`
}

// Acceptances returns the subject's acceptances, oldest first.
func (s *Service) Acceptances(ctx context.Context, q store.Q, subjectID string) ([]Acceptance, error) {
	rows, err := q.QueryContext(ctx, `SELECT policy_version, policy_hash, method, ua_family, network, accepted_at FROM policy_acceptances
		WHERE subject_id = $1 ORDER BY policy_version`, subjectID)
	if err != nil {
		return nil, fmt.Errorf("notice: acceptances: %w", err)
	}
	defer rows.Close()
	out := []Acceptance{}
	for rows.Next() {
		var a Acceptance
		if err := rows.Scan(&a.PolicyVersion, &a.PolicyHash, &a.Method, &a.Evidence.UserAgentFamily, &a.Evidence.Network, &a.AcceptedAt); err != nil {
			return nil, fmt.Errorf("notice: acceptances: %w", err)
		}
		a.AcceptedAt = a.AcceptedAt.UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}
