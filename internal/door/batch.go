package door

import (
	"context"

	"steward/internal/door/internal/keys"
	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/store"
)

// Batch is the door for many subjects at once, for lists (a campaign's
// recipients, a comment thread's authors, an export of many rows): their
// states in one query and, on first need, every one of their keys in one
// more (per 500 subjects each), instead of two queries a person.
type Batch struct {
	o      *Door
	q      store.Q
	use    Use
	views  map[string]*View
	ids    []string
	keys   map[string]map[string]*keys.Key
	loaded bool
}

// Subjects opens views of many subjects for one use. Ids that name no
// subject are left out (View answers fault.NotFound for them).
func (o *Door) Subjects(ctx context.Context, q store.Q, u Use, subjectIDs []string) (*Batch, error) {
	states, err := o.d.States.States(ctx, q, subjectIDs)
	if err != nil {
		return nil, err
	}
	return o.SubjectsOf(ctx, q, u, states)
}

// View returns the view of one subject of the batch.
func (b *Batch) View(subjectID string) (*View, error) {
	v, ok := b.views[subjectID]
	if !ok {
		return nil, fault.New(fault.NotFound, "no such subject")
	}
	return v, nil
}

// loadKeys reads the keys of every subject of the batch in one query.
func (b *Batch) loadKeys(ctx context.Context) error {
	if b.loaded {
		return nil
	}
	ks, err := b.o.ring.Keys(ctx, b.q, b.ids)
	if err != nil {
		return err
	}
	b.keys, b.loaded = ks, true
	return nil
}

// Prepare makes, in a few statements, the keys of the categories that
// subjects of the batch do not have yet, for those the batch's use may
// write the category for: sealing a value for each person of a long list
// (a campaign's first mail to each recipient) then does not make their
// keys one at a time. A destroyed key stays destroyed (sealing under it is
// still refused).
func (b *Batch) Prepare(ctx context.Context, categories ...string) error {
	if err := b.loadKeys(ctx); err != nil {
		return err
	}
	made := map[string]bool{}
	for _, c := range categories {
		var missing []string
		seen := map[string]bool{}
		for _, v := range b.views {
			if seen[v.id] || b.keys[v.id][c] != nil || v.Check(c) != nil {
				continue
			}
			seen[v.id], made[v.id] = true, true
			missing = append(missing, v.id)
		}
		if len(missing) > 0 {
			if err := b.o.ring.CreateMissing(ctx, b.q, missing, c); err != nil {
				return err
			}
		}
	}
	if len(made) == 0 {
		return nil
	}
	// Read back the keys of those who got one (another process may have
	// made some first).
	ids := make([]string, 0, len(made))
	for id := range made {
		ids = append(ids, id)
	}
	fresh, err := b.o.ring.Keys(ctx, b.q, ids)
	if err != nil {
		return err
	}
	for id, ks := range fresh {
		b.keys[id] = ks
	}
	for _, v := range b.views {
		if made[v.id] {
			v.keys = nil // loads again from the batch on next need
		}
	}
	return nil
}

// SubjectsOf is Subjects for states the caller already loaded (a campaign
// reads each recipient's state with their subject row in one query): the
// keys still load in one query on first need.
func (o *Door) SubjectsOf(ctx context.Context, q store.Q, u Use, states map[string]*policy.State) (*Batch, error) {
	b := &Batch{o: o, q: q, use: u, views: make(map[string]*View, len(states))}
	seen := map[string]bool{}
	for asked, st := range states {
		g, err := o.d.Guards.For(ctx, st)
		if err != nil {
			return nil, err
		}
		b.views[asked] = &View{o: o, q: q, use: u, id: st.SubjectID, st: st, guard: g, batch: b}
		if !seen[st.SubjectID] {
			seen[st.SubjectID] = true
			b.ids = append(b.ids, st.SubjectID)
		}
	}
	return b, nil
}
