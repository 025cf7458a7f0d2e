// Package door is the one way to personal data. Every read of a personal
// value names a purpose and a subject and goes through here: the door asks
// the policy guard with the subject's current state (restriction,
// objections, consents, marketing suppression, the policy version the
// subject is bound by), and only when the guard allows it opens the sealed
// value with the subject's key for the value's category. A refusal is a
// typed error (fault.PurposeDenied wrapping a *policy.Denial) and is
// audited. Writes name their purpose too, and are sealed here.
//
// Every personal value at rest is sealed: AES-256-GCM under a data key per
// subject and category, itself wrapped by the master key (see the keys
// package beneath this one, which only the door can import). Destroying a
// subject's keys therefore leaves only ciphertext in whatever copy of the
// database survives — freed pages, the WAL, dead tuples, old backups.
// Lookups that must find a subject by a personal value (an email address)
// use a keyed blind index: an HMAC of the normalised value under a key
// derived from the master key, which is never destroyed (so whoever holds
// the master key and an old backup can test whether an address was ever
// present, but cannot read any address from it).
//
// Who may name which purpose: the subject themself names subject-request
// for their own data (self-service, access and portability); the system
// names the purpose of the work it does (provide-service to deliver mail,
// storage for erasure and retention, a newsletter's purpose for a
// campaign); staff screens name theirs, and the policy declares which
// purposes each staff role may name. A staff use of a purpose its role
// lacks is refused and audited like any other denial.
package door

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"steward/internal/clock"
	"steward/internal/door/internal/keys"
	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/store"
)

// Actors that are not staff.
const (
	ActorSubject = "subject" // the person themself
	ActorSystem  = "system"  // Steward's own work: mail delivery, erasure, retention
	ActorCLI     = "cli"     // an operator at the command line
)

// Use says why personal data is touched and by whom.
type Use struct {
	// Purpose is a purpose the policy declares (the built-ins
	// subject-request, security, legal-claims and storage included).
	Purpose string
	// Actor is ActorSubject, ActorSystem, ActorCLI, or "staff:ID".
	Actor string
	// Role is the staff role of a staff screen ("" for other actors); the
	// policy must let that role name Purpose.
	Role string
	// Hot marks a use on a path taken for every request (collection):
	// its denials are counted and audited once a minute per kind instead
	// of one entry each.
	Hot bool
	// Scope is the consent scope the use rests on ("client:ID": what one
	// application may receive): the purpose's consent counts as given
	// when the subject's consent with that scope is in force, for this use
	// only. "" for the purpose as a whole.
	Scope string
}

// Subject is how the subject themself reads and corrects their own data.
func Subject() Use { return Use{Purpose: policy.SubjectRequest, Actor: ActorSubject} }

// System is Steward's own work for purpose.
func System(purpose string) Use { return Use{Purpose: purpose, Actor: ActorSystem} }

// Storage is the use of erasure and retention: keep, move or destroy data,
// never read it for anything else.
func Storage() Use { return Use{Purpose: policy.Storage, Actor: ActorSystem} }

// Staff is a staff screen's use: the staff member (their subject id), the
// role they act in, and the purpose the screen names.
func Staff(staffID, role, purpose string) Use {
	return Use{Purpose: purpose, Actor: "staff:" + staffID, Role: role}
}

func (u Use) String() string {
	if u.Role != "" {
		return u.Purpose + " by " + u.Actor + " as " + u.Role
	}
	return u.Purpose + " by " + u.Actor
}

// States loads subjects' current state for the guard (subject.Store).
type States interface {
	State(ctx context.Context, q store.Q, id string) (*policy.State, error)
	States(ctx context.Context, q store.Q, ids []string) (map[string]*policy.State, error)
	// MergedFrom lists the subjects merged into id: what was sealed for
	// them moved to id as it was, and opens with their keys.
	MergedFrom(ctx context.Context, q store.Q, id string) ([]string, error)
}

// Guards chooses the guard that applies to a subject's state: the policy
// in force, or for someone who has not accepted a change that reduced
// their rights, the stricter of that and the version they are bound by.
type Guards interface {
	For(ctx context.Context, st *policy.State) (*policy.Guard, error)
}

// Recorder appends audit events (audit.Log); the door records denials
// through it.
type Recorder interface {
	RecordDenial(ctx context.Context, d policy.Denial) error
}

// Deps are what the door needs. All are required.
type Deps struct {
	DB     *store.DB
	Clock  clock.Clock
	Log    *slog.Logger
	Policy *policy.Policy
	Guards Guards
	States States
	Audit  Recorder
	Master *keys.Master
}

// Door is the one way to personal data. It is safe for concurrent use.
type Door struct {
	d       Deps
	ring    *keys.Keyring
	blind   []byte
	denials *denials
	// aeads caches the ciphers of unwrapped data keys by the wrapped
	// bytes they came from: every use still reads the key row (so a key
	// destroyed by any process is refused at once), and only the unwrap
	// is saved. See cachedAEAD.
	aeads sync.Map
	// staff is the policy's role → purposes.
	staff map[string][]string
}

// New opens the door. Close flushes the denials it still holds.
func New(d Deps) (*Door, error) {
	switch {
	case d.DB == nil, d.Clock == nil, d.Policy == nil, d.Guards == nil, d.States == nil, d.Audit == nil, d.Master == nil:
		return nil, errors.New("door: DB, Clock, Policy, Guards, States, Audit and Master are required")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	o := &Door{d: d, ring: keys.NewKeyring(d.DB, d.Master, d.Clock), blind: d.Master.Derive(blindIndexLabel, 32),
		staff: map[string][]string{}}
	for _, r := range d.Policy.StaffRoles() {
		o.staff[r.ID] = slices.Clone(r.Purposes)
	}
	o.denials = newDenials(d.Audit, d.Clock, d.Log)
	return o, nil
}

// Close writes the denials still held for the minute's summary.
func (o *Door) Close(ctx context.Context) error { return o.denials.flush(ctx) }

// Run writes the held hot-path denials once a minute until ctx ends.
func (o *Door) Run(ctx context.Context) { o.denials.run(ctx) }

// Policy is the policy in force.
func (o *Door) Policy() *policy.Policy { return o.d.Policy }

// errNoCategory is the refusal of a field the policy does not declare.
func errNoCategory(field string) error {
	return fault.New(fault.Invalid, "the policy declares no field %q, so it is never stored", field)
}

// CategoryOf returns the category of a field under the policy in force.
func (o *Door) CategoryOf(field string) (string, error) {
	if c := o.d.Policy.CategoryOfField(field); c != "" {
		return c, nil
	}
	return "", errNoCategory(field)
}

// mayName reports whether the use's actor may name its purpose.
func (o *Door) mayName(u Use) bool {
	if u.Role == "" {
		return true
	}
	if u.Purpose == policy.SubjectRequest && u.Actor == ActorSubject {
		return true
	}
	return slices.Contains(o.staff[u.Role], u.Purpose)
}

// decide asks the guard, and the policy about the staff role, and returns
// the denial (nil when allowed).
func (o *Door) decide(ctx context.Context, u Use, g *policy.Guard, st *policy.State, subjectID, category string) *policy.Denial {
	if !o.mayName(u) {
		return &policy.Denial{SubjectID: subjectID, Purpose: u.Purpose, Category: category, Reason: policy.ReasonRoleLacksPurpose}
	}
	if u.Scope != "" && st != nil && !st.Consents[u.Purpose] && st.Consents[policy.ScopedConsent(u.Purpose, u.Scope)] {
		scoped := *st
		scoped.Consents = maps.Clone(st.Consents)
		scoped.Consents[u.Purpose] = true
		st = &scoped
	}
	if d := g.Decide(u.Purpose, category, st); !d.Allowed {
		return &policy.Denial{SubjectID: subjectID, Purpose: u.Purpose, Category: category, Reason: d.Reason}
	}
	return nil
}

// refuse audits a denial and returns it as the typed error.
func (o *Door) refuse(ctx context.Context, q store.Q, u Use, den *policy.Denial) error {
	err := &fault.Error{Code: fault.PurposeDenied,
		Message: "the privacy policy does not allow this use of personal data (" + den.Reason.String() + ")", Err: den}
	den.Actor = u.Actor
	if rerr := o.denials.record(ctx, q, u, *den); rerr != nil {
		return fmt.Errorf("%w; door: audit the denial: %w", err, rerr)
	}
	return err
}

// IsDenied reports whether err is a door's (or guard's) refusal, and the
// denial when it is.
func IsDenied(err error) (*policy.Denial, bool) {
	var d *policy.Denial
	if errors.As(err, &d) {
		return d, true
	}
	return nil, false
}
