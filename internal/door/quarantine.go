package door

import (
	"context"
	"io"
	"strings"

	"steward/internal/door/internal/keys"
	"steward/internal/fault"
	"steward/internal/store"
)

// quarantineSubject is the key owner of everything held in quarantine: no
// subject id is ever spelled this way (ids are random base32).
const quarantineSubject = "~quarantine"

// Quarantine holds what arrived for no known subject — a mail from a
// sender who has not yet proved their address, a payment event for a
// customer Steward cannot match — until it is matched or its time is up.
// Each held thing is sealed under a key of its own, wrapped by a key of
// the quarantine's kind, so destroying the thing's key (when it is
// released to its subject, or deleted after its stated time) leaves only
// ciphertext in every copy. Nothing in quarantine is readable through a
// subject's view: only the package that put it there opens it, to release
// it to a subject or to show staff why it was held.
type Quarantine struct {
	o    *Door
	kind string
}

// Quarantine returns the quarantine of one kind ("support-mail",
// "payment-event"): a lower-case name of the package's choosing.
func (o *Door) Quarantine(kind string) *Quarantine {
	return &Quarantine{o: o, kind: "quarantine:" + kind}
}

func (q *Quarantine) key(ctx context.Context, db store.Q, item string, create bool) (*keys.Key, error) {
	if item == "" || strings.ContainsAny(item, "|\x00") {
		return nil, fault.FieldError("item", "a quarantined item needs an id without '|'")
	}
	parent, err := q.o.ring.KeyFor(ctx, db, quarantineSubject, q.kind)
	if err != nil {
		return nil, err
	}
	return q.o.ring.ItemKey(ctx, db, parent, item, create)
}

// Seal seals a value of one held item under the item's own key.
func (q *Quarantine) Seal(ctx context.Context, db store.Q, item string, value []byte) ([]byte, error) {
	k, err := q.key(ctx, db, item, true)
	if err != nil {
		return nil, err
	}
	return k.Seal(value)
}

// Open opens a value Seal sealed; keys.ErrShredded once the item was
// destroyed.
func (q *Quarantine) Open(ctx context.Context, db store.Q, item string, sealed []byte) ([]byte, error) {
	k, err := q.key(ctx, db, item, false)
	if err != nil {
		return nil, err
	}
	return k.Open(sealed)
}

// SealStream seals a held file (a mail's raw message) into w under the
// item's key; Close must be called and does not close w.
func (q *Quarantine) SealStream(ctx context.Context, db store.Q, item string, w io.Writer) (io.WriteCloser, error) {
	k, err := q.key(ctx, db, item, true)
	if err != nil {
		return nil, err
	}
	return k.NewSealWriter(w)
}

// OpenStream reads a file SealStream sealed.
func (q *Quarantine) OpenStream(ctx context.Context, db store.Q, item string, r io.Reader) (io.Reader, error) {
	k, err := q.key(ctx, db, item, false)
	if err != nil {
		return nil, err
	}
	return k.NewOpenReader(r)
}

// Destroy shreds the item's key: what was held can never be opened again.
// Idempotent.
func (q *Quarantine) Destroy(ctx context.Context, db store.Q, item string) error {
	return q.o.ring.DestroyItem(ctx, db, quarantineSubject, q.kind, item)
}
