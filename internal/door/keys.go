package door

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"sort"

	"steward/internal/door/internal/keys"
	"steward/internal/store"
)

const blindIndexLabel = "steward blind index v1"

// BlindIndex returns the lookup digest of a personal value of a kind (for
// example "email" and a normalised address): an HMAC-SHA-256 under a key
// derived from the master key. A table stores it beside the sealed value
// to find a row by the value without storing the value; it identifies a
// subject only to someone who holds both the master key and the value.
// The key is never destroyed: that is what lets an erased subject's
// address be recognised if it comes back, and it is the limit of erasure
// the README states.
func (o *Door) BlindIndex(kind, value string) []byte {
	m := hmac.New(sha256.New, o.blind)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return m.Sum(nil)
}

// Shred destroys the subject's keys of the given categories (erasure and
// retention, the storage purpose): everything sealed under them, in this
// database and every copy of it, can never be opened again. It returns the
// categories whose live key it destroyed.
func (o *Door) Shred(ctx context.Context, q store.Q, subjectID string, categories ...string) ([]string, error) {
	var out []string
	for _, c := range categories {
		was, err := o.ring.Destroyed(ctx, q, subjectID, c)
		if err != nil {
			return nil, err
		}
		if err := o.ring.Destroy(ctx, q, subjectID, c); err != nil {
			return nil, err
		}
		if !was {
			out = append(out, c)
		}
	}
	return out, nil
}

// ShredAll destroys every live key of the subject and returns the
// categories destroyed.
func (o *Door) ShredAll(ctx context.Context, q store.Q, subjectID string) ([]string, error) {
	return o.ring.DestroyAll(ctx, q, subjectID)
}

// Shredded reports whether the subject's key of a category was destroyed
// (the rights engine verifies its erasures with it).
func (o *Door) Shredded(ctx context.Context, q store.Q, subjectID, category string) (bool, error) {
	return o.ring.Destroyed(ctx, q, subjectID, category)
}

// Revive lets a category be collected again after its key was destroyed:
// a new key is made on the next write; what was sealed under the old one
// stays unreadable.
func (o *Door) Revive(ctx context.Context, q store.Q, subjectID, category string) error {
	return o.ring.Revive(ctx, q, subjectID, category)
}

// Rotate re-wraps every data key under a new master key (see
// keys.Keyring.Rotate).
func (o *Door) Rotate(ctx context.Context, newMaster *keys.Master) (int, error) {
	return o.ring.Rotate(ctx, newMaster)
}

// MasterID names the master key new data keys are wrapped with.
func (o *Door) MasterID() string { return o.ring.Master().ID }

// ShredItem destroys one item's key (under the subject's id or that of a
// subject merged into it): that item, in every copy, can never be opened
// again.
func (o *Door) ShredItem(ctx context.Context, q store.Q, subjectID, category, item string) error {
	// The item may have been sealed for a subject merged into this one.
	merged, err := o.d.States.MergedFrom(ctx, q, subjectID)
	if err != nil {
		return err
	}
	for _, id := range append([]string{subjectID}, merged...) {
		if err := o.ring.DestroyItem(ctx, q, id, category, item); err != nil {
			return err
		}
	}
	return nil
}

// LiveCategories lists the categories (and kinds of derived data) whose
// key the subject still holds, sorted.
func (o *Door) LiveCategories(ctx context.Context, q store.Q, subjectID string) ([]string, error) {
	all, err := o.ring.Keys(ctx, q, []string{subjectID})
	if err != nil {
		return nil, err
	}
	var out []string
	for c, k := range all[subjectID] {
		if k.Usable() {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out, nil
}
