package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"steward/internal/audit"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/mail"
	"steward/internal/policy"
	"steward/internal/subject"
)

// Kinds of delegation between accounts. A primary account holder invites
// someone by address; once they accept, signed in to their own account:
//
//   - a sub-account's holder lets the primary read the sub-account's data
//     in the granted categories (the reader is the primary);
//   - an authorised user may read the primary's data in the granted
//     categories (the reader is the authorised user).
//
// Either way the person whose data is read accepted, and either side may
// revoke at any time, which takes effect at the next read.
const (
	DelegateSubAccount = "sub-account"
	DelegateAuthorised = "authorised-user"
)

// Delegation states.
const (
	DelegationInvited = "invited"
	DelegationActive  = "active"
	DelegationRevoked = "revoked"
)

// Grant is what a delegation lets its reader see.
type Grant struct {
	// Categories are policy categories the reader may read, among those
	// the purpose of running accounts uses.
	Categories []string `json:"categories"`
	// MayRequest lets the primary file rights requests for a sub-account.
	MayRequest bool `json:"may_request,omitempty"`
}

// Delegation is a grant between two accounts, as either side sees it.
type Delegation struct {
	ID         string    `json:"id"`
	Kind       string    `json:"kind"`
	Status     string    `json:"status"`
	Subject    string    `json:"subject,omitempty"` // whose data is read
	Reader     string    `json:"reader,omitempty"`  // who reads it
	Primary    string    `json:"primary"`           // who invited
	Grant      Grant     `json:"grant"`
	CreatedAt  time.Time `json:"created_at"`
	AcceptedAt time.Time `json:"accepted_at,omitzero"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
}

// delegationPurpose is the purpose under which a delegate reads: running
// the account, which the policy states includes its authorised users and
// sub-accounts.
const delegationPurpose = "provide-service"

const delegationTTL = 14 * 24 * time.Hour

// checkGrant keeps a grant to categories the purpose of running accounts
// uses.
func (s *Service) checkGrant(g Grant) (Grant, error) {
	p := s.policy.Policy.Purpose(delegationPurpose)
	if p == nil {
		return g, fault.New(fault.Invalid, "this site offers no shared accounts (its policy declares no %s purpose)", delegationPurpose)
	}
	if len(g.Categories) == 0 {
		return g, fault.FieldError("categories", "name at least one category the other person may see")
	}
	for _, c := range g.Categories {
		if !slices.Contains(p.Uses, c) {
			return g, fault.FieldError("categories", "%q is not a category an account holder can share (choose from %s)", c, strings.Join(p.Uses, ", "))
		}
	}
	cats := slices.Clone(g.Categories)
	sort.Strings(cats)
	g.Categories = slices.Compact(cats)
	return g, nil
}

// Invite asks the holder of an address to join the principal's account:
// as a sub-account (the principal will read the sub-account's granted
// data) or as an authorised user (they will read the principal's granted
// data). A link is mailed; nothing is shared until it is accepted. The
// answer is the same whether or not the address has an account.
func (s *Service) Invite(ctx context.Context, p Principal, kind, email string, g Grant) (Delegation, error) {
	if kind != DelegateSubAccount && kind != DelegateAuthorised {
		return Delegation{}, fault.FieldError("kind", "must be %s or %s", DelegateSubAccount, DelegateAuthorised)
	}
	if p.Account.Staff() {
		return Delegation{}, fault.New(fault.Forbidden, "staff accounts cannot share their data")
	}
	g, err := s.checkGrant(g)
	if err != nil {
		return Delegation{}, err
	}
	norm, err := subject.NormalizeEmail(email)
	if err != nil {
		return Delegation{}, fault.FieldError("email", "must be a valid email address")
	}
	index, err := subject.EmailIndex(s.door, norm)
	if err != nil {
		return Delegation{}, err
	}
	now := s.clock.Now()
	d := Delegation{ID: "dg_" + newSessionID(), Kind: kind, Status: DelegationInvited, Primary: p.Account.SubjectID, Grant: g, CreatedAt: now}
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		tok, hash := newToken()
		if _, err := tx.ExecContext(ctx, `INSERT INTO delegations (id, kind, primary_id, subject_id, reader_id, categories, may_request, status, invite_index, token_hash, expires_at, created_at)
VALUES ($1, $2, $3, $3, '', $4, $5, 'invited', $6, $7, $8, $9)`, d.ID, kind, d.Primary, strings.Join(g.Categories, " "), g.MayRequest, index, hash,
			now.Add(delegationTTL), now); err != nil {
			return err
		}
		sub, _, err := s.subjects.EnsureByEmail(ctx, tx, s.door, door.System(policy.Security), norm, "invitation", s.policyVersion)
		if err != nil {
			return err
		}
		if !sub.Erased() && sub.MergedInto == "" {
			what := "to be an authorised user of their account, who may see its " + strings.Join(g.Categories, ", ") + " data"
			if kind == DelegateSubAccount {
				what = "to make your account one of their sub-accounts: they would see your " + strings.Join(g.Categories, ", ") + " data"
			}
			if _, err := s.outbox.Enqueue(ctx, tx, mail.Message{SubjectID: sub.ID, To: norm, Kind: "account-invitation", Purpose: policy.Security,
				Subject: "An invitation to share an account",
				Text: "Hello,\n\nan account holder invites you " + what + ".\n\nTo accept, sign in (or sign up with this address) and open:\n\n" +
					s.baseURL + "/account/sharing/accept?token=" + tok + "\n\nThe link works for 14 days. Nothing is shared unless you accept, " +
					"and you can stop sharing at any time from your account.\n"}); err != nil {
				return err
			}
		}
		return s.audit.Record(ctx, tx, audit.Event{Actor: p.Account.SubjectID, Action: "account.delegation_invited", Subject: p.Account.SubjectID,
			Detail: map[string]string{"delegation": d.ID, "kind": kind, "categories": strings.Join(g.Categories, " ")}})
	})
	if err != nil {
		return Delegation{}, fmt.Errorf("identity: invite: %w", err)
	}
	return d, nil
}

// AcceptInvitation accepts an invitation for the signed-in principal, whose
// verified address must be the one invited.
func (s *Service) AcceptInvitation(ctx context.Context, p Principal, token string) (Delegation, error) {
	bad := fault.New(fault.NotFound, "this invitation is not valid, was used, or has expired")
	hash, ok := tokenHash(token)
	if !ok {
		return Delegation{}, bad
	}
	if !p.Account.EmailVerified {
		return Delegation{}, fault.New(fault.EmailUnverified, "confirm your address first")
	}
	if p.Account.Staff() {
		return Delegation{}, fault.New(fault.Forbidden, "staff accounts cannot share data")
	}
	sub, err := s.subjects.Get(ctx, s.db, p.Account.SubjectID)
	if err != nil {
		return Delegation{}, err
	}
	var d Delegation
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		var index []byte
		var id, kind, primary string
		err := tx.QueryRowContext(ctx, `SELECT id, kind, primary_id, invite_index FROM delegations WHERE token_hash = $1 AND status = 'invited' AND expires_at > $2`,
			hash, s.clock.Now()).Scan(&id, &kind, &primary, &index)
		if errors.Is(err, sql.ErrNoRows) {
			return bad
		}
		if err != nil {
			return err
		}
		if !sub.EmailIndexIs(index) {
			return fault.New(fault.Forbidden, "this invitation was sent to another address: sign in with the account of that address")
		}
		if primary == p.Account.SubjectID {
			return fault.New(fault.Conflict, "you cannot accept your own invitation")
		}
		subjectID, reader := p.Account.SubjectID, primary
		if kind == DelegateAuthorised {
			subjectID, reader = primary, p.Account.SubjectID
		}
		now := s.clock.Now()
		if _, err := tx.ExecContext(ctx, `UPDATE delegations SET subject_id = $2, reader_id = $3, status = 'active', token_hash = NULL, invite_index = NULL, accepted_at = $4
WHERE id = $1`, id, subjectID, reader, now); err != nil {
			return err
		}
		if err := s.audit.Record(ctx, tx, audit.Event{Actor: p.Account.SubjectID, Action: "account.delegation_accepted", Subject: subjectID,
			Detail: map[string]string{"delegation": id, "reader": reader, "subject": subjectID}}); err != nil {
			return err
		}
		d, err = loadDelegation(ctx, tx, id)
		return err
	})
	return d, err
}

const delegationCols = `id, kind, status, primary_id, subject_id, reader_id, categories, may_request, created_at, accepted_at, revoked_at`

func scanDelegation(row interface{ Scan(...any) error }) (Delegation, error) {
	var d Delegation
	var cats string
	var accepted, revoked sql.NullTime
	err := row.Scan(&d.ID, &d.Kind, &d.Status, &d.Primary, &d.Subject, &d.Reader, &cats, &d.Grant.MayRequest, &d.CreatedAt, &accepted, &revoked)
	d.Grant.Categories = strings.Fields(cats)
	d.CreatedAt, d.AcceptedAt, d.RevokedAt = d.CreatedAt.UTC(), accepted.Time.UTC(), revoked.Time.UTC()
	return d, err
}

func loadDelegation(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id string) (Delegation, error) {
	d, err := scanDelegation(q.QueryRowContext(ctx, `SELECT `+delegationCols+` FROM delegations WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, fault.New(fault.NotFound, "no such delegation")
	}
	return d, err
}

// Delegations lists the delegations the principal takes part in: those
// they invited, and those that let them read or be read.
func (s *Service) Delegations(ctx context.Context, p Principal) ([]Delegation, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+delegationCols+` FROM delegations WHERE primary_id = $1 OR subject_id = $1 OR reader_id = $1
ORDER BY created_at, id`, p.Account.SubjectID)
	if err != nil {
		return nil, fmt.Errorf("identity: list delegations: %w", err)
	}
	defer rows.Close()
	var out []Delegation
	for rows.Next() {
		d, err := scanDelegation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// RevokeDelegation ends a delegation the principal takes part in (as the
// one who invited, whose data is read, or who reads). It takes effect at
// the next read.
func (s *Service) RevokeDelegation(ctx context.Context, p Principal, id string) error {
	d, err := loadDelegation(ctx, s.db, id)
	if err != nil {
		return err
	}
	me := p.Account.SubjectID
	if d.Primary != me && d.Subject != me && d.Reader != me {
		return fault.New(fault.NotFound, "no such delegation")
	}
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE delegations SET status = 'revoked', revoked_at = $2, token_hash = NULL, invite_index = NULL
WHERE id = $1 AND status <> 'revoked'`, id, s.clock.Now()); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{Actor: me, Action: "account.delegation_revoked", Subject: d.Subject,
			Detail: map[string]string{"delegation": id, "reader": d.Reader}})
	})
}

// grantOf is the active grant that lets reader read subjectID: one indexed
// query. fault.NotFound when there is none.
func (s *Service) grantOf(ctx context.Context, reader, subjectID string) (Delegation, error) {
	d, err := scanDelegation(s.db.QueryRowContext(ctx, `SELECT `+delegationCols+` FROM delegations
WHERE reader_id = $1 AND subject_id = $2 AND status = 'active'`, reader, subjectID))
	if errors.Is(err, sql.ErrNoRows) {
		return d, fault.New(fault.NotFound, "no such account shared with you")
	}
	return d, err
}

// ReadShared reads another account's data the principal was granted: the
// fields of the asked categories, each opened through the door for the
// purpose of running accounts, so the other account's restriction or
// objection still applies. Asking for a category beyond the grant, or
// after a revocation, is refused; every read and every refusal is audited
// with both accounts.
func (s *Service) ReadShared(ctx context.Context, reader Principal, subjectID string, categories []string) (map[string]string, error) {
	me := reader.Account.SubjectID
	refuse := func(err error, why string) error {
		if aerr := s.audit.Record(ctx, s.db, audit.Event{Actor: me, Action: "account.shared_read_refused", Subject: subjectID,
			Detail: map[string]string{"reader": me, "why": why, "categories": strings.Join(categories, " ")}}); aerr != nil {
			return aerr
		}
		return err
	}
	d, err := s.grantOf(ctx, me, subjectID)
	if err != nil {
		if fault.Is(err, fault.NotFound) {
			return nil, refuse(err, "no grant")
		}
		return nil, err
	}
	if len(categories) == 0 {
		categories = d.Grant.Categories
	}
	for _, c := range categories {
		if !slices.Contains(d.Grant.Categories, c) {
			return nil, refuse(fault.New(fault.Forbidden, "the account holder did not share their %s data with you", c), "beyond the grant")
		}
	}
	u := door.Use{Purpose: delegationPurpose, Actor: "delegate:" + me}
	v, err := s.door.Subject(ctx, s.db, u, subjectID)
	if err != nil {
		return nil, err
	}
	a, err := loadAccount(ctx, s.db, subjectID)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, field := range s.reg.profileFields() {
		if !slices.Contains(categories, s.policy.Policy.CategoryOfField(field)) {
			continue
		}
		var val string
		if field == FieldEmail {
			val, err = s.subjects.Email(ctx, s.db, v)
		} else {
			val, err = v.Open(ctx, field, a.sealed(field))
		}
		if _, denied := door.IsDenied(err); denied {
			return nil, err
		}
		if err != nil && !errors.Is(err, door.ErrShredded) {
			return nil, fmt.Errorf("identity: read shared %s: %w", field, err)
		}
		out[field] = val
	}
	err = s.audit.Record(ctx, s.db, audit.Event{Actor: me, Action: "account.shared_read", Subject: subjectID,
		Detail: map[string]string{"reader": me, "delegation": d.ID, "categories": strings.Join(categories, " ")}})
	return out, err
}

// MayRequestFor checks that the principal may file rights requests for
// subjectID: it is the primary holder of that sub-account, whose holder
// granted it may_request, and the grant is active. A refusal is audited
// with both accounts.
func (s *Service) MayRequestFor(ctx context.Context, p Principal, subjectID string) error {
	me := p.Account.SubjectID
	d, err := s.grantOf(ctx, me, subjectID)
	why := ""
	switch {
	case fault.Is(err, fault.NotFound):
		why = "no grant"
	case err != nil:
		return err
	case d.Kind != DelegateSubAccount || d.Primary != me:
		why, err = "not a sub-account of the requester", fault.New(fault.Forbidden, "only a primary account holder files requests for its sub-accounts")
	case !d.Grant.MayRequest:
		why, err = "grant does not allow requests", fault.New(fault.Forbidden, "the holder of this sub-account did not let you file requests for it")
	default:
		return nil
	}
	if aerr := s.audit.Record(ctx, s.db, audit.Event{Actor: me, Action: "account.request_for_refused", Subject: subjectID,
		Detail: map[string]string{"reader": me, "why": why}}); aerr != nil {
		return aerr
	}
	return err
}
