package door

import (
	"context"
	"errors"
	"fmt"
	"io"

	"steward/internal/door/internal/keys"
	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/store"
)

// View is one subject's personal data opened for one use: the subject's
// state and guard are loaded once, their keys on first need, and every
// value is opened only when the guard allows the use for that value's
// category. A View belongs to one request or job; it reads nothing that
// was not current when it was made (a revocation that commits later takes
// effect at the next View).
type View struct {
	o     *Door
	q     store.Q
	use   Use
	id    string
	st    *policy.State
	guard *policy.Guard
	keys  map[string]*keys.Key // nil until loaded
	batch *Batch               // set when the keys come from a batch
	// merged holds the keys of subjects merged into this one, loaded the
	// first time a value does not open with the subject's own.
	merged map[string]map[string]*keys.Key
}

// Subject opens a view of one subject's data for a use: one query for the
// subject's state (a merged id answers with the survivor's). An unknown
// subject is fault.NotFound.
func (o *Door) Subject(ctx context.Context, q store.Q, u Use, subjectID string) (*View, error) {
	st, err := o.d.States.State(ctx, q, subjectID)
	if err != nil {
		return nil, err
	}
	g, err := o.d.Guards.For(ctx, st)
	if err != nil {
		return nil, err
	}
	return &View{o: o, q: q, use: u, id: st.SubjectID, st: st, guard: g}, nil
}

// For is a view of the same subject, with the state and keys already
// loaded, for another use (a collector choosing, among the purposes that
// use a category, the first the subject's state allows). The guard still
// decides every value for the new use.
func (v *View) For(u Use) *View {
	w := *v
	w.use = u
	return &w
}

// ID is the subject's id (the survivor's, for a merged id).
func (v *View) ID() string { return v.id }

// State is the subject's state as the view loaded it.
func (v *View) State() *policy.State { return v.st }

// Use is the use the view was opened for.
func (v *View) Use() Use { return v.use }

// Allowed reports whether the view's use may touch the field, and audits
// a refusal: nil when allowed, the typed denial otherwise.
func (v *View) Allowed(ctx context.Context, field string) error {
	cat, err := v.o.CategoryOf(field)
	if err != nil {
		return err
	}
	return v.AllowedCategory(ctx, cat)
}

// AllowedCategory is Allowed for a whole category.
func (v *View) AllowedCategory(ctx context.Context, category string) error {
	if den := v.o.decide(ctx, v.use, v.guard, v.st, v.id, category); den != nil {
		return v.o.refuse(ctx, v.q, v.use, den)
	}
	return nil
}

// Check is AllowedCategory without an audit entry, for code that chooses
// between several uses (a campaign skipping someone who objected): a
// refusal here is an outcome, not an attempt.
func (v *View) Check(category string) error {
	if den := v.o.decide(context.Background(), v.use, v.guard, v.st, v.id, category); den != nil {
		return den
	}
	return nil
}

// key returns the subject's key for a category, loading the subject's
// keys (one query) on first need.
func (v *View) key(ctx context.Context, category string) (*keys.Key, error) {
	if v.keys == nil {
		if v.batch != nil {
			if err := v.batch.loadKeys(ctx); err != nil {
				return nil, err
			}
			v.keys = v.batch.keys[v.id]
		} else {
			all, err := v.o.ring.Keys(ctx, v.q, []string{v.id})
			if err != nil {
				return nil, err
			}
			v.keys = all[v.id]
		}
		if v.keys == nil {
			v.keys = map[string]*keys.Key{}
		}
	}
	return v.keys[category], nil
}

// Open returns the value of field sealed in s, when the view's use may
// read the field; an empty Sealed opens to "". A value whose key was
// destroyed is keys' shredded error (fault.NotFound).
func (v *View) Open(ctx context.Context, field string, s Sealed) (string, error) {
	b, err := v.OpenBytes(ctx, field, s.b)
	return string(b), err
}

// OpenBytes is Open for a value read as raw bytes (the rights engine reads
// tables generically, through the registry).
func (v *View) OpenBytes(ctx context.Context, field string, sealed []byte) ([]byte, error) {
	cat, err := v.o.CategoryOf(field)
	if err != nil {
		return nil, err
	}
	return v.OpenCategory(ctx, cat, sealed)
}

// OpenCategory opens a value sealed under the category's key.
func (v *View) OpenCategory(ctx context.Context, category string, sealed []byte) ([]byte, error) {
	if err := v.AllowedCategory(ctx, category); err != nil {
		return nil, err
	}
	if sealed == nil {
		return nil, nil
	}
	k, err := v.key(ctx, category)
	if err != nil {
		return nil, err
	}
	var plain []byte
	if k == nil {
		err = fmt.Errorf("door: %s has no key for %s: %w", v.id, category, keys.ErrShredded)
	} else {
		plain, err = k.Open(sealed)
	}
	if err != nil && (errors.Is(err, keys.ErrCorrupt) || k == nil) {
		if p, ok := v.openMerged(ctx, category, sealed); ok {
			return p, nil
		}
	}
	return plain, err
}

// openMerged tries the keys of the subjects merged into the view's: a
// value sealed for one of them moved here as it was.
func (v *View) openMerged(ctx context.Context, category string, sealed []byte) ([]byte, bool) {
	for _, ks := range v.mergedKeys(ctx) {
		if k := ks[category]; k != nil {
			if p, err := k.Open(sealed); err == nil {
				return p, true
			}
		}
	}
	return nil, false
}

// mergedKeys loads, once, the keys of the subjects merged into the view's.
func (v *View) mergedKeys(ctx context.Context) map[string]map[string]*keys.Key {
	if v.merged == nil {
		v.merged = map[string]map[string]*keys.Key{}
		ids, err := v.o.d.States.MergedFrom(ctx, v.q, v.id)
		if err != nil || len(ids) == 0 {
			return v.merged
		}
		if ks, err := v.o.ring.Keys(ctx, v.q, ids); err == nil {
			v.merged = ks
		}
	}
	return v.merged
}

// Seal seals value as field of the subject, for the view's use: the guard
// must allow the use for the field's category (a write is a use too). An
// empty value seals to the empty Sealed (stored as NULL).
func (v *View) Seal(ctx context.Context, field, value string) (Sealed, error) {
	if value == "" {
		return Sealed{}, nil
	}
	b, err := v.SealBytes(ctx, field, []byte(value))
	return Sealed{b: b}, err
}

// SealBytes is Seal for bytes.
func (v *View) SealBytes(ctx context.Context, field string, value []byte) ([]byte, error) {
	cat, err := v.o.CategoryOf(field)
	if err != nil {
		return nil, err
	}
	return v.SealCategory(ctx, cat, value)
}

// SealCategory seals value under the category's key, creating the key on
// first use. A destroyed key refuses (keys' shredded error): data of an
// erased category is not collected again until the key is revived.
func (v *View) SealCategory(ctx context.Context, category string, value []byte) ([]byte, error) {
	if err := v.AllowedCategory(ctx, category); err != nil {
		return nil, err
	}
	k, err := v.key(ctx, category)
	if err != nil {
		return nil, err
	}
	if k == nil {
		if k, err = v.o.ring.KeyFor(ctx, v.q, v.id, category); err != nil {
			return nil, err
		}
		v.keys[category] = k
	}
	return k.Seal(value)
}

// itemKey returns the key of one erasable item of the subject's category.
func (v *View) itemKey(ctx context.Context, category, item string, create bool) (*keys.Key, error) {
	parent, err := v.key(ctx, category)
	if err != nil {
		return nil, err
	}
	var k *keys.Key
	if parent != nil {
		if k, err = v.o.ring.ItemKey(ctx, v.q, parent, item, false); err != nil || k.Usable() {
			return k, err
		}
	}
	// An item of a subject merged into this one keeps the key it was
	// sealed under, wrapped by that subject's category key: reading it and
	// sealing it again both use that key, so the item never has two.
	for _, ks := range v.mergedKeys(ctx) {
		if p := ks[category]; p.Usable() {
			if mk, err := v.o.ring.ItemKey(ctx, v.q, p, item, false); err == nil && mk.Usable() {
				return mk, nil
			}
		}
	}
	if !create {
		if k == nil {
			return nil, fmt.Errorf("door: %s has no key for %s: %w", v.id, category, keys.ErrShredded)
		}
		return k, nil
	}
	if parent == nil {
		if parent, err = v.o.ring.KeyFor(ctx, v.q, v.id, category); err != nil {
			return nil, err
		}
		v.keys[category] = parent
	}
	return v.o.ring.ItemKey(ctx, v.q, parent, item, true)
}

// SealItem seals a value of one erasable item (a comment's text, a
// photo's caption) under the item's own key, so that erasing the item
// shreds every copy of it without touching the subject's other items.
func (v *View) SealItem(ctx context.Context, category, item string, value []byte) ([]byte, error) {
	if err := v.AllowedCategory(ctx, category); err != nil {
		return nil, err
	}
	k, err := v.itemKey(ctx, category, item, true)
	if err != nil {
		return nil, err
	}
	return k.Seal(value)
}

// OpenItem opens a value SealItem sealed.
func (v *View) OpenItem(ctx context.Context, category, item string, sealed []byte) ([]byte, error) {
	if err := v.AllowedCategory(ctx, category); err != nil {
		return nil, err
	}
	if sealed == nil {
		return nil, nil
	}
	k, err := v.itemKey(ctx, category, item, false)
	if err != nil {
		return nil, err
	}
	return k.Open(sealed)
}

// SealStream returns a writer that seals a stored file of one erasable
// item (a photo, an attachment) into w, chunk by chunk, under the item's
// own key: the file is never held whole, and shredding the item (or the
// category) makes every copy of it unreadable. Close seals the last chunk
// and must be called; it does not close w.
func (v *View) SealStream(ctx context.Context, category, item string, w io.Writer) (io.WriteCloser, error) {
	if err := v.AllowedCategory(ctx, category); err != nil {
		return nil, err
	}
	k, err := v.itemKey(ctx, category, item, true)
	if err != nil {
		return nil, err
	}
	return k.NewSealWriter(w)
}

// OpenStream returns a reader of a file SealStream sealed. A read fails
// with ErrTruncated when the stored file was cut, and ErrCorrupt when it
// was altered or belongs to another item; no byte is returned unchecked.
func (v *View) OpenStream(ctx context.Context, category, item string, r io.Reader) (io.Reader, error) {
	if err := v.AllowedCategory(ctx, category); err != nil {
		return nil, err
	}
	k, err := v.itemKey(ctx, category, item, false)
	if err != nil {
		return nil, err
	}
	return k.NewOpenReader(r)
}

// mayDerive reports whether the view's use may seal or open derived data
// of a kind: only the subject's own request and storage, and only under a
// kind that is not one of the policy's categories.
func (v *View) mayDerive(kind string) error {
	if v.o.d.Policy.Category(kind) != nil {
		return fault.New(fault.Invalid, "door: %q is a category of the policy, not a kind of derived data", kind)
	}
	if v.use.Purpose == policy.SubjectRequest || v.use.Purpose == policy.Storage {
		return nil
	}
	return &policy.Denial{SubjectID: v.id, Purpose: v.use.Purpose, Category: kind, Reason: policy.ReasonNotUsed}
}

// SealDerived seals data Steward derives from the subject's data for the
// subject (an export ZIP) under a key of its own kind, which dies with the
// subject's erasure. A destroyed key of that kind is revived first: a new
// export after an erasure is new data. Only the subject's own request and
// storage may.
func (v *View) SealDerived(ctx context.Context, kind string, data []byte) ([]byte, error) {
	if err := v.derive(ctx, kind); err != nil {
		return nil, err
	}
	cat := kind
	k, err := v.o.ring.KeyFor(ctx, v.q, v.id, cat)
	if err != nil {
		return nil, err
	}
	if !k.Usable() {
		if err := v.o.ring.Revive(ctx, v.q, v.id, cat); err != nil {
			return nil, err
		}
		if k, err = v.o.ring.KeyFor(ctx, v.q, v.id, cat); err != nil {
			return nil, err
		}
	}
	return k.Seal(data)
}

// OpenDerived opens what SealDerived sealed.
func (v *View) OpenDerived(ctx context.Context, kind string, sealed []byte) ([]byte, error) {
	if err := v.derive(ctx, kind); err != nil {
		return nil, err
	}
	k, err := v.key(ctx, kind)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return nil, fmt.Errorf("door: %s has no key for %s: %w", v.id, kind, keys.ErrShredded)
	}
	return k.Open(sealed)
}

func (v *View) derive(ctx context.Context, kind string) error {
	err := v.mayDerive(kind)
	if den, ok := err.(*policy.Denial); ok {
		return v.o.refuse(ctx, v.q, v.use, den)
	}
	return err
}
