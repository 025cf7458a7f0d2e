package keys_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"steward/internal/clock"
	"steward/internal/door/internal/keys"
	"steward/internal/fault"
	"steward/internal/registry"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

var t0 = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

func mods() []store.Migrations { return []store.Migrations{keys.Migrations()} }

func master(t testing.TB, fill byte) *keys.Master {
	t.Helper()
	m, err := keys.NewMaster(bytes.Repeat([]byte{fill}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// freshDB returns another empty database of the same engine: a stand-in
// for a copy or a restored backup.
func freshDB(t *testing.T, db *store.DB) *store.DB {
	if db.Engine == store.Postgres {
		return storetest.Postgres(t, mods())
	}
	return storetest.SQLite(t, mods())
}

type keyRow struct {
	subject, category, masterID string
	wrapped                     []byte
	createdAt                   time.Time
	destroyed                   bool
}

func copyKeys(t *testing.T, db *store.DB) []keyRow {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), `SELECT subject_id, category, master_id, wrapped, created_at, destroyed_at IS NOT NULL FROM data_keys ORDER BY subject_id, category`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []keyRow
	for rows.Next() {
		var r keyRow
		var mid *string
		if err := rows.Scan(&r.subject, &r.category, &mid, &r.wrapped, &r.createdAt, &r.destroyed); err != nil {
			t.Fatal(err)
		}
		if mid != nil {
			r.masterID = *mid
		}
		out = append(out, r)
	}
	return out
}

func restoreKeys(t *testing.T, db *store.DB, rows []keyRow) {
	t.Helper()
	for _, r := range rows {
		var destroyedAt any
		if r.destroyed {
			destroyedAt = r.createdAt
		}
		var mid any
		if r.masterID != "" {
			mid = r.masterID
		}
		if _, err := db.ExecContext(context.Background(), `INSERT INTO data_keys (subject_id, category, wrapped, master_id, created_at, destroyed_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			r.subject, r.category, r.wrapped, mid, r.createdAt, destroyedAt); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNewMaster(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	m, err := keys.NewMaster(key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(key)
	if want := hex.EncodeToString(sum[:])[:8]; m.ID != want {
		t.Errorf("ID = %s, want %s", m.ID, want)
	}
	if s := m.String(); strings.Contains(s, "0707") || !strings.Contains(s, m.ID) {
		t.Errorf("String() = %q, want the id and nothing of the key", s)
	}
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := keys.NewMaster(make([]byte, n)); err == nil {
			t.Errorf("NewMaster(%d bytes) accepted", n)
		}
	}
}

func TestLoadMaster(t *testing.T) {
	key := bytes.Repeat([]byte{9}, 32)
	b64 := base64.StdEncoding.EncodeToString(key)
	want, _ := keys.NewMaster(key)
	noEnv := func(string) string { return "" }
	envWith := func(v string) func(string) string {
		return func(name string) string {
			if name == keys.EnvMasterKey {
				return v
			}
			return ""
		}
	}
	dir := t.TempDir()
	rawFile := filepath.Join(dir, "raw.key")
	os.WriteFile(rawFile, key, 0o600)
	textFile := filepath.Join(dir, "text.key")
	os.WriteFile(textFile, []byte(b64+"\n"), 0o600)
	shortFile := filepath.Join(dir, "short.key")
	os.WriteFile(shortFile, []byte(base64.StdEncoding.EncodeToString(key[:16])), 0o600)
	otherKey := filepath.Join(dir, "other.key")
	os.WriteFile(otherKey, bytes.Repeat([]byte{1}, 32), 0o600)

	tests := []struct {
		name    string
		env     func(string) string
		file    string
		dev     bool
		wantID  string
		wantErr string
	}{
		{"environment", envWith(b64), "", false, want.ID, ""},
		{"environment wins over a key file and dev", envWith(b64), otherKey, true, want.ID, ""},
		{"environment, raw base64 without padding", envWith(strings.TrimRight(b64, "=")), "", false, want.ID, ""},
		{"environment, wrong length", envWith(base64.StdEncoding.EncodeToString(key[:20])), "", false, "", "decodes to 20 bytes"},
		{"environment, not base64", envWith("not a key!"), "", false, "", "not valid base64"},
		{"raw key file", noEnv, rawFile, false, want.ID, ""},
		{"base64 key file", noEnv, textFile, false, want.ID, ""},
		{"short key file", noEnv, shortFile, false, "", "must hold 32 raw bytes"},
		{"missing key file", noEnv, filepath.Join(dir, "nope.key"), false, "", "no such file"},
		{"nothing, not dev", noEnv, "", false, "", "STEWARD_MASTER_KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := keys.LoadMaster(tt.env, tt.file, t.TempDir(), tt.dev, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), b64) {
					t.Fatalf("error shows the key: %v", err)
				}
				return
			}
			if err != nil || m.ID != tt.wantID {
				t.Fatalf("LoadMaster = %v, %v; want key %s", m, err, tt.wantID)
			}
		})
	}

	t.Run("not dev says how to provide a key", func(t *testing.T) {
		_, err := keys.LoadMaster(noEnv, "", t.TempDir(), false, nil)
		for _, s := range []string{"STEWARD_MASTER_KEY", "--key-file", "openssl rand -base64 32", "--dev"} {
			if err == nil || !strings.Contains(err.Error(), s) {
				t.Errorf("error %v does not mention %q", err, s)
			}
		}
	})

	t.Run("dev creates a key beside the data, warns, and reuses it", func(t *testing.T) {
		data := filepath.Join(t.TempDir(), "steward-data")
		var logs bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		m1, err := keys.LoadMaster(noEnv, "", data, true, log)
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(filepath.Join(data, "master.key"))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("master.key mode = %v, want 0600", st.Mode().Perm())
		}
		if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "same backups") {
			t.Errorf("no warning about backups in the log: %s", logs.String())
		}
		text, _ := os.ReadFile(filepath.Join(data, "master.key"))
		if strings.Contains(logs.String(), strings.TrimSpace(string(text))) {
			t.Errorf("the log shows the key")
		}
		logs.Reset()
		m2, err := keys.LoadMaster(noEnv, "", data, true, log)
		if err != nil || m2.ID != m1.ID {
			t.Fatalf("second dev start got %v, %v; want the same key %s", m2, err, m1.ID)
		}
		if !strings.Contains(logs.String(), "level=WARN") {
			t.Errorf("no warning on the second start")
		}
		_, err = keys.LoadMaster(noEnv, "", data, false, nil)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(data, "master.key")) {
			t.Errorf("outside dev, error %v does not point at the existing development key", err)
		}
	})

	t.Run("a key file inside the data directory is warned about", func(t *testing.T) {
		data := t.TempDir()
		f := filepath.Join(data, "keys", "master.key")
		os.MkdirAll(filepath.Dir(f), 0o700)
		os.WriteFile(f, key, 0o600)
		var logs bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		if _, err := keys.LoadMaster(noEnv, f, data, false, log); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), "same backups") {
			t.Errorf("no warning about a key inside the data directory: %s", logs.String())
		}
		logs.Reset()
		if _, err := keys.LoadMaster(noEnv, rawFile, data, false, log); err != nil {
			t.Fatal(err)
		}
		if logs.Len() != 0 {
			t.Errorf("a key file outside the data directory was warned about: %s", logs.String())
		}
	})

	t.Run("a key file others can read is warned about", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "open.key")
		os.WriteFile(f, key, 0o644)
		var logs bytes.Buffer
		if _, err := keys.LoadMaster(noEnv, f, "", false, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), "chmod 600") {
			t.Errorf("no warning about the file mode: %s", logs.String())
		}
	})
}

func TestTables(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		reg, err := registry.New(keys.Tables())
		if err != nil {
			t.Fatal(err)
		}
		cols, err := db.Columns(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var live []registry.LiveColumn
		for _, c := range cols {
			live = append(live, registry.LiveColumn{Table: c.Table, Name: c.Name})
		}
		if p := reg.Undeclared(live, "schema_migrations"); len(p) > 0 {
			t.Fatalf("registry and schema disagree:\n%s", strings.Join(p, "\n"))
		}
	})
}

func TestSealOpen(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewFake(t0)
		k := keys.NewKeyring(db, master(t, 1), clk)

		t.Run("round trip", func(t *testing.T) {
			for _, plain := range [][]byte{[]byte("+44 20 7946 0958"), {}, bytes.Repeat([]byte("x"), 10000)} {
				sealed, err := k.Seal(ctx, db, "s_alice", "contact", plain)
				if err != nil {
					t.Fatal(err)
				}
				if len(plain) > 4 && bytes.Contains(sealed, plain[:5]) {
					t.Fatalf("sealed value contains the plaintext")
				}
				if sealed[0] != 1 || len(sealed) != 1+12+len(plain)+16 {
					t.Fatalf("sealed format: version %d, length %d; want 1, %d", sealed[0], len(sealed), 1+12+len(plain)+16)
				}
				got, err := k.Open(ctx, db, "s_alice", "contact", sealed)
				if err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("Open = %q, %v; want %q", got, err, plain)
				}
			}
			a, _ := k.Seal(ctx, db, "s_alice", "contact", []byte("same"))
			b, _ := k.Seal(ctx, db, "s_alice", "contact", []byte("same"))
			if bytes.Equal(a, b) {
				t.Errorf("two seals of the same value are equal: the nonce repeats")
			}
		})

		t.Run("a value does not open for another subject or category", func(t *testing.T) {
			sealed, _ := k.Seal(ctx, db, "s_alice", "contact", []byte("secret"))
			k.Seal(ctx, db, "s_bob", "contact", []byte("x"))
			k.Seal(ctx, db, "s_alice", "payment", []byte("x"))
			for _, c := range []struct{ subject, category string }{{"s_bob", "contact"}, {"s_alice", "payment"}} {
				got, err := k.Open(ctx, db, c.subject, c.category, sealed)
				if !errors.Is(err, keys.ErrCorrupt) || got != nil {
					t.Errorf("Open as %s/%s = %q, %v; want ErrCorrupt and nothing", c.subject, c.category, got, err)
				}
			}
			if _, err := k.Open(ctx, db, "s_carol", "contact", sealed); !errors.Is(err, keys.ErrShredded) {
				t.Errorf("Open for a subject without a key: %v, want ErrShredded", err)
			}
		})

		t.Run("tampered values fail", func(t *testing.T) {
			sealed, _ := k.Seal(ctx, db, "s_alice", "contact", []byte("0123456789"))
			cases := map[string][]byte{
				"version":   flip(sealed, 0),
				"nonce":     flip(sealed, 5),
				"body":      flip(sealed, 14),
				"tag":       flip(sealed, len(sealed)-1),
				"truncated": sealed[:len(sealed)-1],
				"short":     sealed[:20],
				"empty":     nil,
				"appended":  append(append([]byte{}, sealed...), 0),
			}
			for name, v := range cases {
				got, err := k.Open(ctx, db, "s_alice", "contact", v)
				if !errors.Is(err, keys.ErrCorrupt) || got != nil {
					t.Errorf("%s: Open = %q, %v; want ErrCorrupt and nothing", name, got, err)
				}
			}
		})

		t.Run("tampered or moved wrapped keys fail", func(t *testing.T) {
			sealed, _ := k.Seal(ctx, db, "s_dave", "contact", []byte("hello"))
			k.Seal(ctx, db, "s_erin", "contact", []byte("x"))
			var erinKey []byte
			db.QueryRowContext(ctx, `SELECT wrapped FROM data_keys WHERE subject_id = 's_erin' AND category = 'contact'`).Scan(&erinKey)
			// Moving Erin's key to Dave's row must not let anything open.
			db.ExecContext(ctx, `UPDATE data_keys SET wrapped = $1 WHERE subject_id = 's_dave' AND category = 'contact'`, erinKey)
			if _, err := k.Open(ctx, db, "s_dave", "contact", sealed); !errors.Is(err, keys.ErrCorrupt) {
				t.Errorf("Open with a moved wrapped key: %v, want ErrCorrupt", err)
			}
			// The wrapped key is bound to its row: Dave's new data must not
			// be sealed under Erin's key, which her erasure would destroy.
			if _, err := k.Seal(ctx, db, "s_dave", "contact", []byte("new")); !errors.Is(err, keys.ErrCorrupt) {
				t.Errorf("Seal with a moved wrapped key: %v, want ErrCorrupt", err)
			}
			db.ExecContext(ctx, `UPDATE data_keys SET wrapped = $1 WHERE subject_id = 's_dave' AND category = 'contact'`, flip(erinKey, 20))
			if _, err := k.Open(ctx, db, "s_dave", "contact", sealed); !errors.Is(err, keys.ErrCorrupt) {
				t.Errorf("Open with an altered wrapped key: %v, want ErrCorrupt", err)
			}
		})

		t.Run("inside a transaction, and a rollback takes the new key with it", func(t *testing.T) {
			var sealed []byte
			err := db.InTx(ctx, func(tx *sql.Tx) error {
				var err error
				if sealed, err = k.Seal(ctx, tx, "s_tx", "contact", []byte("in tx")); err != nil {
					return err
				}
				got, err := k.Open(ctx, tx, "s_tx", "contact", sealed)
				if err != nil || string(got) != "in tx" {
					t.Errorf("Open in the transaction = %q, %v", got, err)
				}
				return errors.New("roll back")
			})
			if err == nil || err.Error() != "roll back" {
				t.Fatalf("InTx = %v", err)
			}
			if _, err := k.Open(ctx, db, "s_tx", "contact", sealed); !errors.Is(err, keys.ErrShredded) {
				t.Errorf("Open after the rollback: %v, want ErrShredded (the key was never committed)", err)
			}
		})

		t.Run("bad names are refused", func(t *testing.T) {
			for _, c := range []struct{ subject, category string }{{"", "contact"}, {"s_a", ""}, {"s_a|x", "contact"}, {"s_a", "con|tact"}} {
				if _, err := k.Seal(ctx, db, c.subject, c.category, []byte("x")); fault.CodeOf(err) != fault.Invalid {
					t.Errorf("Seal(%q, %q): %v, want invalid", c.subject, c.category, err)
				}
			}
		})

		t.Run("concurrent first use creates one key", func(t *testing.T) {
			var wg sync.WaitGroup
			sealed := make([][]byte, 8)
			errs := make([]error, 8)
			for i := range sealed {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sealed[i], errs[i] = k.Seal(ctx, db, "s_race", "contact", []byte{byte(i)})
				}()
			}
			wg.Wait()
			for i := range sealed {
				if errs[i] != nil {
					t.Fatal(errs[i])
				}
				if got, err := k.Open(ctx, db, "s_race", "contact", sealed[i]); err != nil || got[0] != byte(i) {
					t.Fatalf("value %d does not open: %v", i, err)
				}
			}
		})
	})
}

func flip(b []byte, i int) []byte {
	c := append([]byte{}, b...)
	c[i] ^= 0x01
	return c
}

func TestDestroy(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewFake(t0)
		m := master(t, 1)
		k := keys.NewKeyring(db, m, clk)
		phone, _ := k.Seal(ctx, db, "s_alice", "contact", []byte("+44 20 7946 0958"))
		card, _ := k.Seal(ctx, db, "s_alice", "payment", []byte("4242"))
		other, _ := k.Seal(ctx, db, "s_bob", "contact", []byte("+1 555 0100"))
		before := copyKeys(t, db) // a backup taken before the destroy

		clk.Advance(time.Hour)
		if err := k.Destroy(ctx, db, "s_alice", "contact"); err != nil {
			t.Fatal(err)
		}
		if err := k.Destroy(ctx, db, "s_alice", "contact"); err != nil {
			t.Fatalf("second Destroy: %v (want idempotent)", err)
		}

		t.Run("the live database no longer opens it", func(t *testing.T) {
			got, err := k.Open(ctx, db, "s_alice", "contact", phone)
			if !errors.Is(err, keys.ErrShredded) || fault.CodeOf(err) != fault.NotFound || got != nil {
				t.Fatalf("Open after Destroy = %q, %v; want ErrShredded (not_found)", got, err)
			}
			if _, err := k.Seal(ctx, db, "s_alice", "contact", []byte("new")); !errors.Is(err, keys.ErrShredded) {
				t.Fatalf("Seal after Destroy: %v, want ErrShredded", err)
			}
			var wrapped []byte
			var destroyedAt time.Time
			db.QueryRowContext(ctx, `SELECT wrapped, destroyed_at FROM data_keys WHERE subject_id = 's_alice' AND category = 'contact'`).Scan(&wrapped, &destroyedAt)
			if wrapped != nil || !destroyedAt.Equal(clk.Now()) {
				t.Fatalf("row after Destroy: wrapped %x, destroyed_at %v; want NULL and %v", wrapped, destroyedAt, clk.Now())
			}
			if on, _ := k.Destroyed(ctx, db, "s_alice", "contact"); !on {
				t.Errorf("Destroyed = false after Destroy")
			}
		})

		t.Run("other keys are untouched", func(t *testing.T) {
			if got, err := k.Open(ctx, db, "s_alice", "payment", card); err != nil || string(got) != "4242" {
				t.Errorf("payment of the same subject: %q, %v", got, err)
			}
			if got, err := k.Open(ctx, db, "s_bob", "contact", other); err != nil || string(got) != "+1 555 0100" {
				t.Errorf("contact of another subject: %q, %v", got, err)
			}
		})

		t.Run("a copy taken after the destroy cannot open it, even with the master key", func(t *testing.T) {
			after := copyKeys(t, db)
			copyDB := freshDB(t, db)
			restoreKeys(t, copyDB, after)
			k2 := keys.NewKeyring(copyDB, m, clk)
			if _, err := k2.Open(ctx, copyDB, "s_alice", "contact", phone); !errors.Is(err, keys.ErrShredded) {
				t.Fatalf("Open from a later copy: %v, want ErrShredded", err)
			}
			for _, r := range after {
				if r.subject == "s_alice" && r.category == "contact" && r.wrapped != nil {
					t.Fatalf("the later copy still holds wrapped key bytes %x", r.wrapped)
				}
			}
		})

		t.Run("the ciphertext without the key table cannot be opened", func(t *testing.T) {
			empty := freshDB(t, db)
			k2 := keys.NewKeyring(empty, m, clk)
			if _, err := k2.Open(ctx, empty, "s_bob", "contact", other); !errors.Is(err, keys.ErrShredded) {
				t.Fatalf("Open without the key table: %v, want ErrShredded", err)
			}
		})

		t.Run("a backup taken before the destroy still opens with the master key, until reapply", func(t *testing.T) {
			// This is the limit of crypto-shredding the package doc states:
			// an older backup holds the wrapped key.
			restored := freshDB(t, db)
			restoreKeys(t, restored, before)
			k2 := keys.NewKeyring(restored, m, clk)
			got, err := k2.Open(ctx, restored, "s_alice", "contact", phone)
			if err != nil || string(got) != "+44 20 7946 0958" {
				t.Fatalf("Open from the older backup = %q, %v; the documented truth is that it opens", got, err)
			}
			// Without the master key the old backup is useless on its own.
			k3 := keys.NewKeyring(restored, master(t, 2), clk)
			if _, err := k3.Open(ctx, restored, "s_alice", "contact", phone); !errors.Is(err, keys.ErrWrongMaster) {
				t.Fatalf("Open from the older backup with another master: %v, want ErrWrongMaster", err)
			}
			// reapply destroys again what was erased since the backup.
			if err := k2.Destroy(ctx, restored, "s_alice", "contact"); err != nil {
				t.Fatal(err)
			}
			if _, err := k2.Open(ctx, restored, "s_alice", "contact", phone); !errors.Is(err, keys.ErrShredded) {
				t.Fatalf("Open after reapply: %v, want ErrShredded", err)
			}
		})

		t.Run("DestroyAll and tombstones", func(t *testing.T) {
			k.Seal(ctx, db, "s_alice", "identity", []byte("1990-01-01"))
			got, err := k.DestroyAll(ctx, db, "s_alice")
			if err != nil || !reflect.DeepEqual(got, []string{"identity", "payment"}) {
				t.Fatalf("DestroyAll = %v, %v; want [identity payment]", got, err)
			}
			if _, err := k.Open(ctx, db, "s_alice", "payment", card); !errors.Is(err, keys.ErrShredded) {
				t.Errorf("payment after DestroyAll: %v, want ErrShredded", err)
			}
			if got, _ := k.DestroyAll(ctx, db, "s_alice"); len(got) != 0 {
				t.Errorf("second DestroyAll = %v, want nothing", got)
			}
			if err := k.Destroy(ctx, db, "s_nokey", "contact"); err != nil {
				t.Fatal(err)
			}
			if _, err := k.Seal(ctx, db, "s_nokey", "contact", []byte("x")); !errors.Is(err, keys.ErrShredded) {
				t.Errorf("Seal after destroying a key that never existed: %v, want ErrShredded", err)
			}
		})

		t.Run("Revive allows a fresh key and the old data stays unreadable", func(t *testing.T) {
			if err := k.Revive(ctx, db, "s_alice", "contact"); err != nil {
				t.Fatal(err)
			}
			fresh, err := k.Seal(ctx, db, "s_alice", "contact", []byte("+33 1 23 45 67 89"))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := k.Open(ctx, db, "s_alice", "contact", fresh); err != nil || string(got) != "+33 1 23 45 67 89" {
				t.Fatalf("Open of a value sealed after Revive: %q, %v", got, err)
			}
			if got, err := k.Open(ctx, db, "s_alice", "contact", phone); err == nil || got != nil {
				t.Fatalf("the value sealed before the destroy opened after Revive: %q", got)
			}
		})
	})
}

func TestRotate(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewFake(t0)
		m1, m2 := master(t, 1), master(t, 2)
		k := keys.NewKeyring(db, m1, clk)
		type value struct {
			subject, category string
			sealed            []byte
			plain             string
		}
		var values []value
		for _, s := range []string{"s_a", "s_b", "s_c"} {
			for _, c := range []string{"contact", "payment"} {
				plain := s + "/" + c
				sealed, err := k.Seal(ctx, db, s, c, []byte(plain))
				if err != nil {
					t.Fatal(err)
				}
				values = append(values, value{s, c, sealed, plain})
			}
		}
		k.Destroy(ctx, db, "s_c", "payment")

		n, err := k.Rotate(ctx, m2)
		if err != nil {
			t.Fatal(err)
		}
		if n != 5 {
			t.Errorf("Rotate re-wrapped %d keys, want 5 (the destroyed one stays destroyed)", n)
		}
		if k.Master().ID != m2.ID {
			t.Errorf("keyring master = %s after Rotate, want %s", k.Master().ID, m2.ID)
		}
		var oldLeft int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM data_keys WHERE master_id = $1`, m1.ID).Scan(&oldLeft)
		if oldLeft != 0 {
			t.Errorf("%d keys still wrapped by the old master", oldLeft)
		}

		onlyNew := keys.NewKeyring(db, m2, clk)
		onlyOld := keys.NewKeyring(db, m1, clk)
		for _, v := range values {
			got, err := onlyNew.Open(ctx, db, v.subject, v.category, v.sealed)
			if v.subject == "s_c" && v.category == "payment" {
				if !errors.Is(err, keys.ErrShredded) {
					t.Errorf("destroyed key after rotation: %v, want ErrShredded", err)
				}
				continue
			}
			if err != nil || string(got) != v.plain {
				t.Errorf("new master opens %s/%s = %q, %v; want %q (ciphertext unchanged)", v.subject, v.category, got, err, v.plain)
			}
			_, err = onlyOld.Open(ctx, db, v.subject, v.category, v.sealed)
			if !errors.Is(err, keys.ErrWrongMaster) {
				t.Errorf("old master opens %s/%s: %v, want ErrWrongMaster", v.subject, v.category, err)
			}
			if err != nil && (!strings.Contains(err.Error(), m2.ID) || !strings.Contains(err.Error(), m1.ID)) {
				t.Errorf("wrong-master error does not name both keys: %v", err)
			}
		}

		if n, err := k.Rotate(ctx, m2); err != nil || n != 0 {
			t.Errorf("second Rotate = %d, %v; want 0, nil", n, err)
		}
		if n, err := onlyOld.Rotate(ctx, master(t, 3)); !errors.Is(err, keys.ErrWrongMaster) || n != 0 {
			t.Errorf("Rotate by a keyring without the current master = %d, %v; want ErrWrongMaster", n, err)
		}
		var stillM2 int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM data_keys WHERE master_id = $1`, m2.ID).Scan(&stillM2)
		if stillM2 != 5 {
			t.Errorf("a failed rotation changed keys: %d under the current master, want 5", stillM2)
		}
	})
}

func BenchmarkSealOpen(b *testing.B) {
	db := storetest.SQLite(b, mods())
	ctx := context.Background()
	m, _ := keys.NewMaster(bytes.Repeat([]byte{1}, 32))
	k := keys.NewKeyring(db, m, clock.NewFake(t0))
	plain := []byte("+44 20 7946 0958")
	if _, err := k.Seal(ctx, db, "s_bench", "contact", plain); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		sealed, err := k.Seal(ctx, db, "s_bench", "contact", plain)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := k.Open(ctx, db, "s_bench", "contact", sealed); err != nil {
			b.Fatal(err)
		}
	}
}
