package door_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"

	"steward/examples"
	"steward/internal/audit"
	"steward/internal/clock"
	"steward/internal/door"
	"steward/internal/door/internal/keys"
	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/schema"
	"steward/internal/store"
	"steward/internal/store/storetest"
	"steward/internal/subject"
)

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

type env struct {
	t        testing.TB
	ctx      context.Context
	db       *store.DB
	clock    *clock.Fake
	pol      *policy.Policy
	audit    *audit.Log
	subjects *subject.Store
	door     *door.Door
	master   *keys.Master
}

func newEnv(t testing.TB, db *store.DB, policyFile string) *env {
	t.Helper()
	ctx := context.Background()
	data, err := fs.ReadFile(examples.FS, policyFile)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse(policyFile, data)
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(t0)
	v, _, err := policy.Publish(ctx, db, pol, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, db: db, clock: clk, pol: pol, audit: audit.New(db, clk), subjects: subject.NewStore(db, clk)}
	if e.master, err = keys.NewMaster(bytes.Repeat([]byte{3}, 32)); err != nil {
		t.Fatal(err)
	}
	e.door = e.newDoor(e.master)
	_ = v
	return e
}

// newDoor opens another door on the same database: another process.
func (e *env) newDoor(m *keys.Master) *door.Door {
	e.t.Helper()
	pub := policy.Published{Policy: e.pol}
	var err error
	if pub.Version, err = policy.Latest(e.ctx, e.db); err != nil {
		e.t.Fatal(err)
	}
	d, err := door.New(door.Deps{DB: e.db, Clock: e.clock, Policy: e.pol, Guards: policy.NewGuards(e.db, pub, e.audit, nil),
		States: e.subjects, Audit: e.audit, Master: m})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { d.Close(context.Background()) })
	return d
}

func (e *env) subject(email string) string {
	e.t.Helper()
	s, err := e.subjects.Create(e.ctx, e.db, e.door, door.Subject(), subject.KindMember, email, "signup", 1)
	if err != nil {
		e.t.Fatal(err)
	}
	return s.ID
}

func (e *env) view(u door.Use, id string) *door.View {
	e.t.Helper()
	v, err := e.door.Subject(e.ctx, e.db, u, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// denials returns the guard.denied entries of the audit log.
func (e *env) denials() []audit.Entry {
	e.t.Helper()
	all, err := e.audit.List(e.ctx, 0, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []audit.Entry
	for _, a := range all {
		if a.Action == "guard.denied" {
			out = append(out, a)
		}
	}
	return out
}

func each(t *testing.T, policyFile string, fn func(t *testing.T, e *env)) {
	storetest.Each(t, schema.Migrations(), func(t *testing.T, db *store.DB) { fn(t, newEnv(t, db, policyFile)) })
}

func TestSealAndOpenForAPurpose(t *testing.T) {
	each(t, "jmir.yaml", func(t *testing.T, e *env) {
		ann := e.subject("ann@example.org")
		own := e.view(door.Subject(), ann)
		name, err := own.Seal(e.ctx, "name", "Ann Example")
		if err != nil {
			t.Fatal(err)
		}
		if name.IsZero() || strings.Contains(name.String(), "Ann") {
			t.Fatalf("sealed name = %v", name)
		}
		got, err := own.Open(e.ctx, "name", name)
		if err != nil || got != "Ann Example" {
			t.Fatalf("open own name = %q, %v", got, err)
		}
		// Another process opens it too: the key is in the database.
		other := e.newDoor(e.master)
		v, err := other.Subject(e.ctx, e.db, door.System("provide-service"), ann)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := v.Open(e.ctx, "name", name); err != nil || got != "Ann Example" {
			t.Fatalf("another door opens %q, %v", got, err)
		}
		// A sealed value moved to another subject does not open there.
		bob := e.subject("bob@example.org")
		if _, err := e.view(door.Subject(), bob).Seal(e.ctx, "name", "Bob"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.view(door.Subject(), bob).Open(e.ctx, "name", name); !errors.Is(err, keys.ErrCorrupt) {
			t.Fatalf("Ann's name opened as Bob's: %v, want ErrCorrupt", err)
		}
		// An empty value is no value.
		if s, err := own.Seal(e.ctx, "company", ""); err != nil || !s.IsZero() {
			t.Fatalf("empty seal = %v, %v", s, err)
		}
	})
}

// TestPromiseJ9_PaymentOnlyForPayment: payment data opens for payment and
// for the member's own request, and for nothing else; a refusal is typed
// and audited.
func TestPromiseJ9_PaymentOnlyForPayment(t *testing.T) {
	each(t, "jmir.yaml", func(t *testing.T, e *env) {
		ann := e.subject("ann@example.org")
		field := "card_last4"
		if e.pol.CategoryOfField(field) == "" || !e.pol.Category(e.pol.CategoryOfField(field)).Payment {
			t.Fatalf("jmir.yaml: %s is not payment data", field)
		}
		card, err := e.view(door.System(policy.PaymentPurpose), ann).Seal(e.ctx, field, "4242")
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range []door.Use{door.System(policy.PaymentPurpose), door.Subject()} {
			if got, err := e.view(u, ann).Open(e.ctx, field, card); err != nil || got != "4242" {
				t.Errorf("%s: open = %q, %v", u, got, err)
			}
		}
		before := len(e.denials())
		for _, u := range []door.Use{door.System("marketing"), door.System("analytics"), door.Staff("s_staff", "support", "support")} {
			_, err := e.view(u, ann).Open(e.ctx, field, card)
			if !fault.Is(err, fault.PurposeDenied) {
				t.Errorf("%s read payment data: %v", u, err)
				continue
			}
			d, ok := door.IsDenied(err)
			if !ok || d.Purpose != u.Purpose || d.SubjectID != ann {
				t.Errorf("%s: denial %+v", u, d)
			}
		}
		if got := len(e.denials()) - before; got != 3 {
			t.Errorf("%d denials audited, want 3", got)
		}
	})
}

// Staff screens name a purpose; the policy says which each role may name.
func TestStaffRoleMustHoldThePurpose(t *testing.T) {
	each(t, "jmir.yaml", func(t *testing.T, e *env) {
		ann := e.subject("ann@example.org")
		name, err := e.view(door.Subject(), ann).Seal(e.ctx, "name", "Ann Example")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.view(door.Staff("s_staff", "support", "support"), ann).Open(e.ctx, "name", name); err != nil {
			t.Errorf("support reading a name for support: %v", err)
		}
		_, err = e.view(door.Staff("s_staff", "analyst", "support"), ann).Open(e.ctx, "name", name)
		d, ok := door.IsDenied(err)
		if !ok || d.Reason != policy.ReasonRoleLacksPurpose {
			t.Fatalf("an analyst naming support: %v, want the role-lacks-purpose denial", err)
		}
		last := e.denials()
		if len(last) == 0 || last[0].Actor != "staff:s_staff" || last[0].Detail["reason"] != policy.ReasonRoleLacksPurpose.String() {
			t.Errorf("audit = %+v", last)
		}
	})
}

// The subject's state is read at each view: a restriction or a withdrawn
// consent recorded through any process applies to the next view in every
// other, and shredding refuses everywhere at once.
func TestStateAndShreddingApplyAtOnceEverywhere(t *testing.T) {
	each(t, "jmir.yaml", func(t *testing.T, e *env) {
		ann := e.subject("ann@example.org")
		other := e.newDoor(e.master)
		name, err := e.view(door.Subject(), ann).Seal(e.ctx, "name", "Ann Example")
		if err != nil {
			t.Fatal(err)
		}
		open := func(d *door.Door, u door.Use) error {
			v, err := d.Subject(e.ctx, e.db, u, ann)
			if err != nil {
				return err
			}
			_, err = v.Open(e.ctx, "name", name)
			return err
		}
		// Warm the other door's caches.
		if err := open(other, door.System("marketing")); !fault.Is(err, fault.PurposeDenied) {
			t.Fatalf("marketing without consent: %v", err)
		}
		if err := e.subjects.SetConsent(e.ctx, e.db, ann, "marketing", true); err != nil {
			t.Fatal(err)
		}
		if err := open(other, door.System("marketing")); err != nil {
			t.Fatalf("marketing after consent: %v", err)
		}
		if err := e.subjects.SetConsent(e.ctx, e.db, ann, "marketing", false); err != nil {
			t.Fatal(err)
		}
		if err := open(other, door.System("marketing")); !fault.Is(err, fault.PurposeDenied) {
			t.Fatalf("marketing after withdrawal: %v", err)
		}
		if err := e.subjects.SetRestriction(e.ctx, e.db, ann, true, nil); err != nil {
			t.Fatal(err)
		}
		if err := open(other, door.System("provide-service")); !fault.Is(err, fault.PurposeDenied) {
			t.Fatalf("provide-service under restriction: %v", err)
		}
		if err := open(other, door.Storage()); err != nil {
			t.Fatalf("storage under restriction: %v", err)
		}
		if err := open(other, door.Subject()); err != nil {
			t.Fatalf("the subject's own request under restriction: %v", err)
		}
		if _, err := e.door.ShredAll(e.ctx, e.db, ann); err != nil {
			t.Fatal(err)
		}
		if err := open(other, door.Subject()); !errors.Is(err, keys.ErrShredded) {
			t.Fatalf("open after shredding in another process: %v, want ErrShredded", err)
		}
		if _, err := e.view(door.Subject(), ann).Seal(e.ctx, "name", "Ann again"); !errors.Is(err, keys.ErrShredded) {
			t.Fatalf("seal after shredding: %v, want ErrShredded until revived", err)
		}
	})
}

func TestBatchOpensManySubjects(t *testing.T) {
	each(t, "mixi.yaml", func(t *testing.T, e *env) {
		ids := make([]string, 30)
		sealed := map[string]door.Sealed{}
		for i := range ids {
			ids[i] = e.subject("m" + string(rune('a'+i)) + "@example.org")
			s, err := e.view(door.Subject(), ids[i]).Seal(e.ctx, "name", "Member "+ids[i])
			if err != nil {
				t.Fatal(err)
			}
			sealed[ids[i]] = s
		}
		if err := e.subjects.SetRestriction(e.ctx, e.db, ids[3], true, nil); err != nil {
			t.Fatal(err)
		}
		b, err := e.door.Subjects(e.ctx, e.db, door.System("provide-service"), append(ids, "s_nobody"))
		if err != nil {
			t.Fatal(err)
		}
		for i, id := range ids {
			v, err := b.View(id)
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.Open(e.ctx, "name", sealed[id])
			if i == 3 {
				if !fault.Is(err, fault.PurposeDenied) {
					t.Errorf("restricted member opened in a batch: %v", err)
				}
				continue
			}
			if err != nil || got != "Member "+id {
				t.Errorf("batch open %s = %q, %v", id, got, err)
			}
		}
		if _, err := b.View("s_nobody"); !fault.Is(err, fault.NotFound) {
			t.Errorf("unknown subject in a batch: %v", err)
		}
	})
}

// TestBatchPrepareMakesMissingKeys: Prepare makes the keys a batch's
// subjects lack in one go, for those the use may write the category for;
// a key that exists is kept (what it sealed still opens), a destroyed key
// stays destroyed, and a restricted member gets none.
func TestBatchPrepareMakesMissingKeys(t *testing.T) {
	each(t, "mixi.yaml", func(t *testing.T, e *env) {
		const cat = "communications"
		fresh, kept, erased, restricted := e.subject("fresh@example.org"), e.subject("kept@example.org"),
			e.subject("erased@example.org"), e.subject("restricted@example.org")
		old, err := e.view(door.Subject(), kept).SealCategory(e.ctx, cat, []byte("kept mail"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.door.Shred(e.ctx, e.db, erased, cat); err != nil {
			t.Fatal(err)
		}
		if err := e.subjects.SetRestriction(e.ctx, e.db, restricted, true, nil); err != nil {
			t.Fatal(err)
		}
		ids := []string{fresh, kept, erased, restricted}
		b, err := e.door.Subjects(e.ctx, e.db, door.System("communicate"), ids)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Prepare(e.ctx, cat); err != nil {
			t.Fatal(err)
		}
		has := func(id string) bool {
			live, err := e.door.LiveCategories(e.ctx, e.db, id)
			if err != nil {
				t.Fatal(err)
			}
			return slices.Contains(live, cat)
		}
		if !has(fresh) || !has(kept) || has(erased) || has(restricted) {
			t.Errorf("keys after Prepare: fresh %v, kept %v, erased %v, restricted %v; want fresh and kept only",
				has(fresh), has(kept), has(erased), has(restricted))
		}
		v, _ := b.View(fresh)
		sealed, err := v.SealCategory(e.ctx, cat, []byte("first mail"))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := e.view(door.Subject(), fresh).OpenCategory(e.ctx, cat, sealed); err != nil || string(got) != "first mail" {
			t.Errorf("sealed with the prepared key, opened elsewhere: %q, %v", got, err)
		}
		if got, err := e.view(door.Subject(), kept).OpenCategory(e.ctx, cat, old); err != nil || string(got) != "kept mail" {
			t.Errorf("the existing key was replaced: %q, %v", got, err)
		}
		v, _ = b.View(erased)
		if _, err := v.SealCategory(e.ctx, cat, []byte("x")); !errors.Is(err, door.ErrShredded) {
			t.Errorf("sealing for an erased category after Prepare: %v, want ErrShredded", err)
		}
	})
}

func TestItemKeysShredOneItem(t *testing.T) {
	each(t, "mixi.yaml", func(t *testing.T, e *env) {
		ann := e.subject("ann@example.org")
		cat := e.pol.CategoryOfField("name")
		v := e.view(door.Subject(), ann)
		one, err := v.SealItem(e.ctx, cat, "comment-1", []byte("first"))
		if err != nil {
			t.Fatal(err)
		}
		two, err := v.SealItem(e.ctx, cat, "comment-2", []byte("second"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.OpenItem(e.ctx, cat, "comment-2", one); !errors.Is(err, keys.ErrCorrupt) {
			t.Errorf("item 1 opened with item 2's key: %v", err)
		}
		if err := e.door.ShredItem(e.ctx, e.db, ann, cat, "comment-1"); err != nil {
			t.Fatal(err)
		}
		v = e.view(door.Subject(), ann)
		if _, err := v.OpenItem(e.ctx, cat, "comment-1", one); !errors.Is(err, keys.ErrShredded) {
			t.Errorf("shredded item opened: %v", err)
		}
		if got, err := v.OpenItem(e.ctx, cat, "comment-2", two); err != nil || string(got) != "second" {
			t.Errorf("the other item = %q, %v", got, err)
		}
		if _, err := e.door.Shred(e.ctx, e.db, ann, cat); err != nil {
			t.Fatal(err)
		}
		if _, err := e.view(door.Subject(), ann).OpenItem(e.ctx, cat, "comment-2", two); !errors.Is(err, keys.ErrShredded) {
			t.Errorf("an item opened after its category key went: %v", err)
		}
	})
}

// A stored file is sealed as a stream under its item's key: it opens for
// a use the guard allows, not for one it refuses (audited), and not once
// the item is shredded; a cut copy is refused.
func TestStreamsSealPerItem(t *testing.T) {
	each(t, "mixi.yaml", func(t *testing.T, e *env) {
		ann := e.subject("ann@example.org")
		cat := e.pol.CategoryOfField("name")
		plain := bytes.Repeat([]byte("photo bytes "), 20000)
		var stored bytes.Buffer
		w, err := e.view(door.Subject(), ann).SealStream(e.ctx, cat, "photo-1", &stored)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(plain); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(stored.Bytes(), []byte("photo bytes")) {
			t.Fatal("the stored file holds plaintext")
		}
		read := func(u door.Use, item string, b []byte) ([]byte, error) {
			r, err := e.view(u, ann).OpenStream(e.ctx, cat, item, bytes.NewReader(b))
			if err != nil {
				return nil, err
			}
			return io.ReadAll(r)
		}
		if got, err := read(door.Subject(), "photo-1", stored.Bytes()); err != nil || !bytes.Equal(got, plain) {
			t.Errorf("opened %d bytes, %v; want the file", len(got), err)
		}
		if _, err := read(door.System("measure"), "photo-1", stored.Bytes()); !fault.Is(err, fault.PurposeDenied) {
			t.Errorf("a refused use opened the file: %v", err)
		}
		if _, err := read(door.Subject(), "photo-1", stored.Bytes()[:stored.Len()-40]); !errors.Is(err, door.ErrTruncated) && !errors.Is(err, door.ErrCorrupt) {
			t.Errorf("a cut file: %v, want a refusal", err)
		}
		if _, err := read(door.Subject(), "photo-2", stored.Bytes()); err == nil {
			t.Error("the file opened as another item")
		}
		if err := e.door.ShredItem(e.ctx, e.db, ann, cat, "photo-1"); err != nil {
			t.Fatal(err)
		}
		if _, err := read(door.Subject(), "photo-1", stored.Bytes()); !errors.Is(err, door.ErrShredded) {
			t.Errorf("a shredded file: %v, want ErrShredded", err)
		}
	})
}

func TestBlindIndex(t *testing.T) {
	each(t, "mixi.yaml", func(t *testing.T, e *env) {
		a := e.door.BlindIndex("email", "ann@example.org")
		if !bytes.Equal(a, e.newDoor(e.master).BlindIndex("email", "ann@example.org")) {
			t.Error("the blind index differs between processes with one master key")
		}
		if bytes.Equal(a, e.door.BlindIndex("phone", "ann@example.org")) || bytes.Equal(a, e.door.BlindIndex("email", "bob@example.org")) {
			t.Error("the blind index does not separate kinds or values")
		}
		other, _ := keys.NewMaster(bytes.Repeat([]byte{4}, 32))
		if bytes.Equal(a, e.newDoor(other).BlindIndex("email", "ann@example.org")) {
			t.Error("the blind index does not depend on the master key")
		}
		if bytes.Contains(a, []byte("ann")) {
			t.Error("the blind index holds the value")
		}
	})
}

// Denials on hot paths are counted and audited once a minute; a denial
// met inside the caller's transaction is audited after it.
func TestDenialsAreAllRecorded(t *testing.T) {
	each(t, "mixi.yaml", func(t *testing.T, e *env) {
		ann := e.subject("ann@example.org")
		before := len(e.denials())
		hot := door.System("marketing")
		hot.Hot = true
		for range 50 {
			if err := e.view(hot, ann).Allowed(e.ctx, "name"); !fault.Is(err, fault.PurposeDenied) {
				t.Fatalf("hot path: %v", err)
			}
		}
		err := e.db.InTx(e.ctx, func(tx *sql.Tx) error {
			v, err := e.door.Subject(e.ctx, tx, door.System("marketing"), ann)
			if err != nil {
				return err
			}
			if err := v.Allowed(e.ctx, "name"); !fault.Is(err, fault.PurposeDenied) {
				t.Errorf("in a transaction: %v", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(e.denials()) - before; got != 0 {
			t.Fatalf("%d denials written before the flush, want 0 (held)", got)
		}
		if err := e.door.Close(e.ctx); err != nil {
			t.Fatal(err)
		}
		got := e.denials()[:len(e.denials())-before]
		counted := map[string]bool{}
		for _, d := range got {
			counted[d.Detail["count"]] = true
		}
		if len(got) != 2 || !counted["50"] {
			t.Fatalf("after the flush: %d entries %+v, want one counting 50 and one single", len(got), got)
		}
	})
}

func TestQuarantineSealsEachItemUnderItsOwnKey(t *testing.T) {
	each(t, "jmir.yaml", func(t *testing.T, e *env) {
		q := e.door.Quarantine("test")
		one, err := q.Seal(e.ctx, e.db, "one", []byte("held one"))
		if err != nil {
			t.Fatal(err)
		}
		two, err := q.Seal(e.ctx, e.db, "two", []byte("held two"))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(one, []byte("held one")) {
			t.Fatal("sealed value holds the plaintext")
		}
		if _, err := q.Open(e.ctx, e.db, "two", one); !errors.Is(err, door.ErrCorrupt) {
			t.Errorf("opening one item with another's key: %v, want ErrCorrupt", err)
		}
		if err := q.Destroy(e.ctx, e.db, "one"); err != nil {
			t.Fatal(err)
		}
		if _, err := q.Open(e.ctx, e.db, "one", one); !errors.Is(err, door.ErrShredded) {
			t.Errorf("opening a destroyed item: %v, want ErrShredded", err)
		}
		if got, err := q.Open(e.ctx, e.db, "two", two); err != nil || string(got) != "held two" {
			t.Errorf("the other item: %q, %v", got, err)
		}
		if _, err := e.door.Quarantine("other").Open(e.ctx, e.db, "two", two); err == nil {
			t.Error("another kind of quarantine opened the item")
		}
		var buf bytes.Buffer
		w, err := q.SealStream(e.ctx, e.db, "file", &buf)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, "a held file")
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := q.OpenStream(e.ctx, e.db, "file", &buf)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(r); err != nil || string(got) != "a held file" {
			t.Errorf("stream: %q, %v", got, err)
		}
	})
}
