package policy

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"steward/internal/store"
)

// Guards chooses the guard that applies to a subject. Where the policy asks
// for it (changes.significant_requires_consent), a published change that
// reduced rights applies to a subject only once they accept it: until then
// the guard applied to them is the stricter of the version they are bound
// by (State.BoundVersion: the one they were first recorded under, or a
// later one they accepted) and the version in force. Everyone else gets
// the guard of the version in force.
//
// Versions are published only at start, before any subject is served, so
// the published versions are read once, on first use, and a stricter guard
// is built once per version subjects are bound by.
type Guards struct {
	db      *store.DB
	in      Published
	current *Guard
	log     *slog.Logger

	mu       sync.Mutex
	versions []Version // newest first, without Raw; nil until read
	stricter map[int]*Guard
}

// NewGuards returns the guards of the policy in force, which record their
// denials with rec (nil records nothing).
func NewGuards(db *store.DB, in Published, rec DenialRecorder, log *slog.Logger) *Guards {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Guards{db: db, in: in, current: NewGuard(in.Policy, rec), log: log, stricter: map[int]*Guard{}}
}

// Current returns the guard of the version in force.
func (g *Guards) Current() *Guard { return g.current }

// For returns the guard that applies to a subject in state st.
func (g *Guards) For(ctx context.Context, st *State) (*Guard, error) {
	if !g.in.Policy.Changes.SignificantRequiresConsent {
		return g.current, nil
	}
	if err := g.load(ctx); err != nil {
		return nil, err
	}
	bound := st.BoundVersion
	if bound <= 0 || !g.reduced(bound) {
		return g.current, nil
	}
	return g.stricterThan(ctx, bound)
}

// Unaccepted returns the published versions after bound up to the version
// in force that reduce rights, oldest first: the changes a subject bound by
// version bound has not accepted (with bound 0, every such change). None
// when the policy does not ask for acceptance.
func (g *Guards) Unaccepted(ctx context.Context, bound int) ([]Version, error) {
	if !g.in.Policy.Changes.SignificantRequiresConsent {
		return nil, nil
	}
	if err := g.load(ctx); err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Version
	for i := len(g.versions) - 1; i >= 0; i-- {
		if v := g.versions[i]; g.reduces(v, bound) {
			out = append(out, v)
		}
	}
	return out, nil
}

// reduces reports whether v is a change after bound, up to the version in
// force, that reduced rights.
func (g *Guards) reduces(v Version, bound int) bool {
	return v.Number > bound && v.Number <= g.in.Number() && v.ReducesRights
}

// reduced reports whether a subject bound by version bound has a change to
// accept; it is Unaccepted without building the list, for every recipient
// of a campaign.
func (g *Guards) reduced(bound int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, v := range g.versions {
		if g.reduces(v, bound) {
			return true
		}
	}
	return false
}

func (g *Guards) load(ctx context.Context) error {
	g.mu.Lock()
	loaded := g.versions != nil
	g.mu.Unlock()
	if loaded {
		return nil
	}
	vs, err := List(ctx, g.db)
	if err != nil {
		return fmt.Errorf("policy: guards: %w", err)
	}
	if vs == nil {
		vs = []Version{}
	}
	g.mu.Lock()
	g.versions = vs
	g.mu.Unlock()
	return nil
}

// stricterThan returns the guard for a subject bound by version bound: the
// stricter of it and the version in force, built once per version.
func (g *Guards) stricterThan(ctx context.Context, bound int) (*Guard, error) {
	g.mu.Lock()
	s, ok := g.stricter[bound]
	g.mu.Unlock()
	if ok {
		return s, nil
	}
	v, err := Get(ctx, g.db, bound)
	if err != nil {
		return nil, fmt.Errorf("policy: guards: version %d: %w", bound, err)
	}
	old, err := v.Policy()
	if err != nil {
		// A version this binary cannot read: nothing is known to be
		// stricter, so keep the current guard but say so.
		g.log.Warn("policy: cannot parse an earlier policy version; applying the current one", "version", bound, "err", err)
		s = g.current
	} else {
		s = g.current.Stricter(NewGuard(old, nil))
	}
	g.mu.Lock()
	g.stricter[bound] = s
	g.mu.Unlock()
	return s, nil
}
