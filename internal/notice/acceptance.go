package notice

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"steward/internal/audit"
	"steward/internal/consent"
	"steward/internal/fault"
	"steward/internal/store"
	"steward/internal/subject"
)

// PendingChange is a change of the policy that reduced rights and waits
// for the person's acceptance.
type PendingChange struct {
	Version       int       `json:"version"`
	EffectiveDate time.Time `json:"effective_date"`
	Reasons       []string  `json:"reasons"`
	URL           string    `json:"url"`
}

// pending returns the changes the subject has not accepted, oldest first
// (empty when none, or when the policy does not ask for acceptance).
func (s *Service) pending(ctx context.Context, q store.Q, subjectID string) ([]PendingChange, error) {
	all, err := s.d.Guards.Unaccepted(ctx, 0)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return []PendingChange{}, nil
	}
	st, err := s.d.Subjects.State(ctx, q, subjectID)
	if err != nil {
		return nil, err
	}
	vs, err := s.d.Guards.Unaccepted(ctx, st.BoundVersion)
	if err != nil {
		return nil, err
	}
	out := []PendingChange{}
	for _, v := range vs {
		out = append(out, PendingChange{Version: v.Number, EffectiveDate: v.EffectiveDate, Reasons: v.Reasons, URL: s.policyURL(v.Number)})
	}
	return out, nil
}

// Accept records a member's explicit acceptance of the version in force
// (and so of every change before it) in their subject state. It is
// idempotent. fault.Invalid when version is not the one in force (the
// person must accept what they were shown).
func (s *Service) Accept(ctx context.Context, subjectID string, version int, method consent.Method, ev consent.Evidence) error {
	if version != s.d.Policy.Number() {
		return fault.FieldError("version", "only the policy version in force (%d) can be accepted", s.d.Policy.Number())
	}
	return s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		st, err := s.d.Subjects.State(ctx, tx, subjectID)
		if err != nil {
			return err
		}
		pending, err := s.d.Guards.Unaccepted(ctx, st.BoundVersion)
		if err != nil {
			return err
		}
		if len(pending) == 0 {
			return nil // nothing waits for acceptance: accepting again changes nothing
		}
		if err := s.d.Subjects.AcceptPolicy(ctx, tx, st.SubjectID, subject.PolicyAcceptance{PolicyVersion: version,
			PolicyHash: s.d.Policy.Policy.Hash(), Method: string(method), UserAgentFamily: ev.UserAgentFamily, Network: ev.Network}); err != nil {
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

// acceptances returns the subject's acceptances, oldest first.
func (s *Service) acceptances(ctx context.Context, q store.Q, subjectID string) ([]Acceptance, error) {
	as, err := s.d.Subjects.PolicyAcceptances(ctx, q, subjectID)
	if err != nil {
		return nil, err
	}
	out := make([]Acceptance, len(as))
	for i, a := range as {
		out[i] = Acceptance{PolicyVersion: a.PolicyVersion, PolicyHash: a.PolicyHash, Method: a.Method,
			Evidence: consent.Evidence{UserAgentFamily: a.UserAgentFamily, Network: a.Network}, AcceptedAt: a.AcceptedAt}
	}
	return out, nil
}
