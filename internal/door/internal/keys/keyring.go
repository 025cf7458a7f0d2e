package keys

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"steward/internal/clock"
	"steward/internal/fault"
	"steward/internal/registry"
	"steward/internal/store"
)

// ErrShredded means the data key was destroyed (or never existed in this
// database): the sealed value can never be opened again. Test with
// errors.Is; its code is fault.NotFound.
var ErrShredded = &fault.Error{Code: fault.NotFound, Message: "the data was erased: its encryption key was destroyed"}

// ErrWrongMaster means a data key was wrapped by a master key this keyring
// does not hold: the process was started with the wrong key.
var ErrWrongMaster = &fault.Error{Code: fault.Internal, Message: "the data key was wrapped by a different master key"}

// ErrCorrupt means a sealed value or a wrapped key failed authentication:
// it was altered, truncated, or copied from another subject or category.
var ErrCorrupt = &fault.Error{Code: fault.Internal, Message: "the sealed value is corrupt or was altered"}

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the schema of module "keys".
func Migrations() store.Migrations {
	return store.Embedded("keys", migrationFiles)
}

// Tables declares data_keys for the personal-data registry. Its rows belong
// to a subject but hold no personal data: a wrapped key reveals nothing,
// and exports should leave it out. Erasure destroys keys with DestroyAll
// (or Destroy per category); deleting the rows outright shreds too.
func Tables() []registry.Table {
	return []registry.Table{{
		Name: "data_keys", Owner: "keys", Dataset: "encryption_keys",
		SubjectColumn: "subject_id", Origin: registry.Derived, Source: "steward",
		Description: "The encryption keys of your data, one per kind of data, themselves encrypted. When a kind of data is erased its key is destroyed, so the encrypted copies left anywhere, backups included, can never be read again.",
		Columns: []registry.Column{
			{Name: "subject_id"},
			{Name: "category"},
			{Name: "wrapped"},
			{Name: "master_id"},
			{Name: "created_at"},
			{Name: "destroyed_at"},
		},
	}, {
		Name: "item_keys", Owner: "keys", Dataset: "item_encryption_keys",
		SubjectColumn: "subject_id", Origin: registry.Derived, Source: "steward",
		Description: "The encryption key of each thing you can erase on its own (a comment, a photo, an attachment), itself encrypted with the key of its kind of data. Erasing the thing destroys its key.",
		Columns: []registry.Column{
			{Name: "subject_id"},
			{Name: "category"},
			{Name: "item"},
			{Name: "wrapped"},
			{Name: "created_at"},
			{Name: "destroyed_at"},
		},
	}}
}

const sealVersion = 1

// sealOverhead is the version byte, the nonce and the GCM tag.
const sealOverhead = 1 + 12 + 16

// Keyring seals and opens sensitive fields with per-subject data keys.
//
// Every Open reads the key row, to see whether another process destroyed
// it: a key cached on its own would keep data readable after erasure.
// What is cached is the cipher of an unwrapped key, found by the wrapped
// bytes just read: a destroyed key has none left, so nothing cached opens
// it.
type Keyring struct {
	db    *store.DB
	clock clock.Clock

	current atomic.Pointer[Master]
	mu      sync.Mutex
	known   map[string]*Master // every master this keyring was given, by id

	readStmt atomic.Pointer[sql.Stmt]

	aeads  sync.Map // subject|category|wrapped → cipher.AEAD; see cipherOf
	cached atomic.Int64
}

// NewKeyring returns a keyring that wraps new data keys with m.
func NewKeyring(db *store.DB, m *Master, c clock.Clock) *Keyring {
	k := &Keyring{db: db, clock: c, known: map[string]*Master{m.ID: m}}
	k.current.Store(m)
	return k
}

// Master returns the master key new data keys are wrapped with.
func (k *Keyring) Master() *Master { return k.current.Load() }

func (k *Keyring) master(id string) *Master {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.known[id]
}

func checkNames(subjectID, category string) error {
	for _, v := range [2]struct{ field, val string }{{"subject_id", subjectID}, {"category", category}} {
		// The additional data joins the two with "|": neither may contain
		// it, or two different pairs could authenticate the same value.
		if v.val == "" || len(v.val) > 128 || strings.ContainsAny(v.val, "|\x00") {
			return fault.FieldError(v.field, "%s must be 1 to 128 bytes without '|'", v.field)
		}
	}
	return nil
}

func aad(subjectID, category string) []byte { return []byte(subjectID + "|" + category) }

// Seal encrypts plaintext under the subject's data key for the category,
// creating the key on first use. The result is a version byte (1), a
// random 12-byte nonce and the AES-256-GCM ciphertext with its tag, with
// "subjectID|category" as additional data. ErrShredded once the key was
// destroyed (see Revive).
func (k *Keyring) Seal(ctx context.Context, q store.Q, subjectID, category string, plaintext []byte) ([]byte, error) {
	if err := checkNames(subjectID, category); err != nil {
		return nil, err
	}
	aead, err := k.dataKey(ctx, q, subjectID, category, true)
	if err != nil {
		return nil, err
	}
	var nonce [12]byte
	rand.Read(nonce[:])
	out := make([]byte, 0, sealOverhead+len(plaintext))
	out = append(out, sealVersion)
	out = append(out, nonce[:]...)
	return aead.Seal(out, nonce[:], plaintext, aad(subjectID, category)), nil
}

// Open decrypts a value Seal produced for the same subject and category.
// ErrShredded when the key was destroyed or is not in this database,
// ErrCorrupt when the value was altered, ErrWrongMaster when the key was
// wrapped by a master this keyring does not hold. It never returns
// unauthenticated bytes.
func (k *Keyring) Open(ctx context.Context, q store.Q, subjectID, category string, sealed []byte) ([]byte, error) {
	if err := checkNames(subjectID, category); err != nil {
		return nil, err
	}
	if len(sealed) < sealOverhead || sealed[0] != sealVersion {
		return nil, fmt.Errorf("keys: open %s/%s: not a sealed value of a known version: %w", subjectID, category, ErrCorrupt)
	}
	aead, err := k.dataKey(ctx, q, subjectID, category, false)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, sealed[1:13], sealed[13:], aad(subjectID, category))
	if err != nil {
		return nil, fmt.Errorf("keys: open %s/%s: %w", subjectID, category, ErrCorrupt)
	}
	return plain, nil
}

type keyRow struct {
	wrapped   []byte
	masterID  sql.NullString
	destroyed bool
}

const readKeyQuery = `SELECT wrapped, master_id, destroyed_at FROM data_keys WHERE subject_id = $1 AND category = $2`

// readKey reads a key row through a statement prepared once per keyring:
// on SQLite preparing costs more than running this lookup. It is prepared
// only outside a transaction (preparing on the pool while a transaction
// holds the last connection would deadlock); transactions reuse it once it
// exists.
func (k *Keyring) readKey(ctx context.Context, q store.Q, subjectID, category string) (keyRow, bool, error) {
	var row *sql.Row
	stmt := k.readStmt.Load()
	switch v := q.(type) {
	case *store.DB:
		if v == k.db && stmt == nil {
			if prepared, err := k.db.PrepareContext(ctx, readKeyQuery); err == nil {
				if k.readStmt.CompareAndSwap(nil, prepared) {
					stmt = prepared
				} else {
					prepared.Close()
					stmt = k.readStmt.Load()
				}
			}
		}
		if v == k.db && stmt != nil {
			row = stmt.QueryRowContext(ctx, subjectID, category)
		}
	case *sql.Tx:
		if stmt != nil {
			row = v.StmtContext(ctx, stmt).QueryRowContext(ctx, subjectID, category)
		}
	}
	if row == nil {
		row = q.QueryRowContext(ctx, readKeyQuery, subjectID, category)
	}
	var r keyRow
	var destroyed sql.NullTime
	err := row.Scan(&r.wrapped, &r.masterID, &destroyed)
	if errors.Is(err, sql.ErrNoRows) {
		return keyRow{}, false, nil
	}
	if err != nil {
		return keyRow{}, false, fmt.Errorf("keys: read data key: %w", err)
	}
	r.destroyed = destroyed.Valid
	return r, true, nil
}

// dataKey returns the cipher of the subject's key for the category,
// creating the key when create is set and there is none.
func (k *Keyring) dataKey(ctx context.Context, q store.Q, subjectID, category string, create bool) (cipher.AEAD, error) {
	row, ok, err := k.readKey(ctx, q, subjectID, category)
	if err != nil {
		return nil, err
	}
	if !ok && create {
		m := k.current.Load()
		key := make([]byte, KeySize)
		rand.Read(key)
		// DO NOTHING rather than catching a unique violation, which would
		// abort the caller's PostgreSQL transaction; whoever lost the race
		// reads the winner's key below.
		_, err := q.ExecContext(ctx, `INSERT INTO data_keys (subject_id, category, wrapped, master_id, created_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (subject_id, category) DO NOTHING`, subjectID, category, m.wrap(subjectID, category, key), m.ID, k.clock.Now())
		clear(key)
		if err != nil {
			return nil, fmt.Errorf("keys: create data key: %w", err)
		}
		if row, ok, err = k.readKey(ctx, q, subjectID, category); err != nil {
			return nil, err
		}
	}
	if !ok {
		return nil, fmt.Errorf("keys: %s/%s has no data key in this database: %w", subjectID, category, ErrShredded)
	}
	if row.destroyed || row.wrapped == nil {
		return nil, fmt.Errorf("keys: %s/%s: %w", subjectID, category, ErrShredded)
	}
	return k.cipherOf(subjectID, category, row.masterID.String, row.wrapped)
}

// Destroy shreds the subject's data key for the category: the wrapped key
// is overwritten and cleared and destroyed_at set, so everything sealed
// under it is unreadable from now on, in this database and every later
// copy. The row stays as a tombstone, so a later Seal for the pair fails
// with ErrShredded instead of silently creating a new key; Revive allows
// it again. Destroying a key that does not exist records the tombstone.
// Idempotent.
func (k *Keyring) Destroy(ctx context.Context, q store.Q, subjectID, category string) error {
	if err := checkNames(subjectID, category); err != nil {
		return err
	}
	_, err := k.destroy(ctx, q, subjectID, category)
	return err
}

func (k *Keyring) destroy(ctx context.Context, q store.Q, subjectID, category string) (bool, error) {
	now := k.clock.Now()
	if k.db != nil && k.db.Engine == store.SQLite {
		// Same-size overwrite first: SQLite rewrites such a cell in place,
		// so the key bytes do not linger in the page's free space.
		if _, err := q.ExecContext(ctx, `UPDATE data_keys SET wrapped = zeroblob(length(wrapped))
			WHERE subject_id = $1 AND category = $2 AND wrapped IS NOT NULL`, subjectID, category); err != nil {
			return false, fmt.Errorf("keys: destroy: %w", err)
		}
	}
	res, err := q.ExecContext(ctx, `UPDATE data_keys SET wrapped = NULL, master_id = NULL, destroyed_at = $3
		WHERE subject_id = $1 AND category = $2 AND destroyed_at IS NULL`, subjectID, category, now)
	if err != nil {
		return false, fmt.Errorf("keys: destroy: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("keys: destroy: %w", err)
	}
	if n > 0 {
		return true, nil
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO data_keys (subject_id, category, wrapped, master_id, created_at, destroyed_at) VALUES ($1, $2, NULL, NULL, $3, $3)
		ON CONFLICT (subject_id, category) DO NOTHING`, subjectID, category, now); err != nil {
		return false, fmt.Errorf("keys: destroy: %w", err)
	}
	return false, nil
}

// DestroyAll shreds every live data key of the subject and returns the
// categories it destroyed, sorted.
func (k *Keyring) DestroyAll(ctx context.Context, q store.Q, subjectID string) ([]string, error) {
	if err := checkNames(subjectID, "all"); err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, `SELECT category FROM data_keys WHERE subject_id = $1 AND destroyed_at IS NULL ORDER BY category`, subjectID)
	if err != nil {
		return nil, fmt.Errorf("keys: destroy all: %w", err)
	}
	var cats []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return nil, fmt.Errorf("keys: destroy all: %w", err)
		}
		cats = append(cats, c)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, fmt.Errorf("keys: destroy all: %w", err)
	}
	var destroyed []string
	for _, c := range cats {
		ok, err := k.destroy(ctx, q, subjectID, c)
		if err != nil {
			return nil, err
		}
		if ok {
			destroyed = append(destroyed, c)
		}
	}
	return destroyed, nil
}

// Revive removes the tombstone of a destroyed key so that Seal creates a
// fresh key for the pair (for a category collected again after erasure).
// What was sealed under the destroyed key stays unreadable. A live key is
// left alone.
func (k *Keyring) Revive(ctx context.Context, q store.Q, subjectID, category string) error {
	if err := checkNames(subjectID, category); err != nil {
		return err
	}
	if _, err := q.ExecContext(ctx, `DELETE FROM data_keys WHERE subject_id = $1 AND category = $2 AND destroyed_at IS NOT NULL`, subjectID, category); err != nil {
		return fmt.Errorf("keys: revive: %w", err)
	}
	return nil
}

// Destroyed reports whether the subject's key for the category was
// destroyed (the rights engine checks its erasures with it).
func (k *Keyring) Destroyed(ctx context.Context, q store.Q, subjectID, category string) (bool, error) {
	row, ok, err := k.readKey(ctx, q, subjectID, category)
	if err != nil {
		return false, err
	}
	return ok && (row.destroyed || row.wrapped == nil), nil
}

const rotateBatch = 500

// Rotate re-wraps every live data key under newMaster in one transaction
// and returns how many it re-wrapped; from then on the keyring wraps new
// keys with newMaster. Ciphertexts do not change. Keys already under
// newMaster are skipped, so a second run finishes what a race left (a key
// created under the old master by another process during the rotation):
// the keyring keeps every master it was given, so it still opens those.
// Run it with other processes stopped or restart them with the new key
// right after: a process holding only the old master cannot open rotated
// keys (ErrWrongMaster).
func (k *Keyring) Rotate(ctx context.Context, newMaster *Master) (int, error) {
	if newMaster == nil {
		return 0, errors.New("keys: rotate: no new master key")
	}
	k.mu.Lock()
	k.known[newMaster.ID] = newMaster
	k.mu.Unlock()
	n := 0
	err := k.db.InTx(ctx, func(tx *sql.Tx) error {
		n = 0
		if k.db.Engine == store.Postgres {
			// Block new keys (wrapped with the old master) until the
			// rotation commits; SQLite's write lock already does.
			if _, err := tx.ExecContext(ctx, `LOCK TABLE data_keys IN SHARE ROW EXCLUSIVE MODE`); err != nil {
				return fmt.Errorf("keys: rotate: lock: %w", err)
			}
		}
		lastSubject, lastCategory := "", ""
		for {
			type item struct {
				subject, category, masterID string
				wrapped                     []byte
			}
			rows, err := tx.QueryContext(ctx, `SELECT subject_id, category, master_id, wrapped FROM data_keys
				WHERE destroyed_at IS NULL AND (subject_id > $1 OR (subject_id = $1 AND category > $2))
				ORDER BY subject_id, category LIMIT $3`, lastSubject, lastCategory, rotateBatch)
			if err != nil {
				return fmt.Errorf("keys: rotate: %w", err)
			}
			var batch []item
			for rows.Next() {
				var it item
				var mid sql.NullString
				if err := rows.Scan(&it.subject, &it.category, &mid, &it.wrapped); err != nil {
					rows.Close()
					return fmt.Errorf("keys: rotate: %w", err)
				}
				it.masterID = mid.String
				batch = append(batch, it)
			}
			err = rows.Err()
			rows.Close()
			if err != nil {
				return fmt.Errorf("keys: rotate: %w", err)
			}
			for _, it := range batch {
				if it.masterID == newMaster.ID {
					continue
				}
				old := k.master(it.masterID)
				if old == nil {
					return fmt.Errorf("keys: rotate: the data key of %s/%s was wrapped by master key %s, which this keyring does not hold: %w",
						it.subject, it.category, it.masterID, ErrWrongMaster)
				}
				key, err := old.unwrap(it.subject, it.category, it.wrapped)
				if err != nil {
					return fmt.Errorf("keys: rotate %s/%s: %v: %w", it.subject, it.category, err, ErrCorrupt)
				}
				wrapped := newMaster.wrap(it.subject, it.category, key)
				clear(key)
				if _, err := tx.ExecContext(ctx, `UPDATE data_keys SET wrapped = $3, master_id = $4 WHERE subject_id = $1 AND category = $2`,
					it.subject, it.category, wrapped, newMaster.ID); err != nil {
					return fmt.Errorf("keys: rotate: %w", err)
				}
				n++
			}
			if len(batch) < rotateBatch {
				return nil
			}
			lastSubject, lastCategory = batch[len(batch)-1].subject, batch[len(batch)-1].category
		}
	})
	if err != nil {
		return 0, err
	}
	k.current.Store(newMaster)
	return n, nil
}

// Key is a subject's data key for one category, unwrapped and ready to
// seal and open. A Key whose row is destroyed or missing seals nothing
// and opens nothing (ErrShredded).
type Key struct {
	subject, category string
	aead              cipher.AEAD
	destroyed         bool
}

// Usable reports whether the key exists and was not destroyed.
func (k *Key) Usable() bool { return k != nil && k.aead != nil && !k.destroyed }

// Seal encrypts plaintext like Keyring.Seal.
func (k *Key) Seal(plaintext []byte) ([]byte, error) {
	if !k.Usable() {
		return nil, fmt.Errorf("keys: %s: %w", k.name(), ErrShredded)
	}
	var nonce [12]byte
	rand.Read(nonce[:])
	out := make([]byte, 0, sealOverhead+len(plaintext))
	out = append(out, sealVersion)
	out = append(out, nonce[:]...)
	return k.aead.Seal(out, nonce[:], plaintext, aad(k.subject, k.category)), nil
}

// Open decrypts like Keyring.Open.
func (k *Key) Open(sealed []byte) ([]byte, error) {
	if !k.Usable() {
		return nil, fmt.Errorf("keys: %s: %w", k.name(), ErrShredded)
	}
	if len(sealed) < sealOverhead || sealed[0] != sealVersion {
		return nil, fmt.Errorf("keys: open %s: not a sealed value of a known version: %w", k.name(), ErrCorrupt)
	}
	plain, err := k.aead.Open(nil, sealed[1:13], sealed[13:], aad(k.subject, k.category))
	if err != nil {
		return nil, fmt.Errorf("keys: open %s: %w", k.name(), ErrCorrupt)
	}
	return plain, nil
}

func (k *Key) name() string {
	if k == nil {
		return "no key"
	}
	return k.subject + "/" + k.category
}

// aeadCacheSize bounds the unwrapped ciphers a keyring keeps; past it the
// cache starts again empty (a cold unwrap costs about a microsecond).
const aeadCacheSize = 20000

// cipherOf returns the cipher of a wrapped key, from the cache when the
// same wrapped bytes were unwrapped before. The cache is keyed by the
// wrapped bytes themselves, which are read from the database on every
// use: a destroyed key has none, so nothing cached can open it.
func (k *Keyring) cipherOf(subjectID, category, masterID string, wrapped []byte) (cipher.AEAD, error) {
	// The subject and category are part of the cache key: the wrapped
	// bytes authenticate only under them, and a copy moved to another row
	// must fail to unwrap there, not be found in the cache.
	ck := subjectID + "|" + category + "|" + string(wrapped)
	if a, ok := k.aeads.Load(ck); ok {
		return a.(cipher.AEAD), nil
	}
	m := k.master(masterID)
	if m == nil {
		return nil, fmt.Errorf("keys: the data key of %s/%s was wrapped by master key %s, but this process holds master key %s: start Steward with the master key that wrote this database: %w",
			subjectID, category, masterID, k.current.Load().ID, ErrWrongMaster)
	}
	raw, err := m.unwrap(subjectID, category, wrapped)
	if err != nil {
		return nil, fmt.Errorf("keys: %s/%s: %v: %w", subjectID, category, err, ErrCorrupt)
	}
	defer clear(raw)
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("keys: data key: %w", err)
	}
	a, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keys: data key: %w", err)
	}
	if k.cached.Add(1) > aeadCacheSize {
		k.aeads.Clear()
		k.cached.Store(1)
	}
	k.aeads.Store(ck, a)
	return a, nil
}

// Keys loads every key of the given subjects in one query (per 500
// subjects): subject → category → key. Destroyed keys are present and not
// Usable; a category with no row is absent.
func (k *Keyring) Keys(ctx context.Context, q store.Q, subjectIDs []string) (map[string]map[string]*Key, error) {
	out := make(map[string]map[string]*Key, len(subjectIDs))
	for start := 0; start < len(subjectIDs); start += 500 {
		chunk := subjectIDs[start:min(start+500, len(subjectIDs))]
		marks := make([]string, len(chunk))
		args := make([]any, len(chunk))
		for i, id := range chunk {
			marks[i] = fmt.Sprintf("$%d", i+1)
			if k.db != nil && k.db.Engine == store.SQLite {
				marks[i] = "?" // SQLite looks "$N" names up by a linear search while parsing
			}
			args[i] = id
		}
		rows, err := q.QueryContext(ctx, `SELECT subject_id, category, wrapped, master_id, destroyed_at IS NOT NULL FROM data_keys WHERE subject_id IN (`+
			strings.Join(marks, ", ")+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("keys: load keys: %w", err)
		}
		for rows.Next() {
			var subject, category string
			var wrapped []byte
			var masterID sql.NullString
			var destroyed bool
			if err := rows.Scan(&subject, &category, &wrapped, &masterID, &destroyed); err != nil {
				rows.Close()
				return nil, fmt.Errorf("keys: load keys: %w", err)
			}
			key := &Key{subject: subject, category: category, destroyed: destroyed || wrapped == nil}
			if !key.destroyed {
				if key.aead, err = k.cipherOf(subject, category, masterID.String, wrapped); err != nil {
					rows.Close()
					return nil, err
				}
			}
			if out[subject] == nil {
				out[subject] = map[string]*Key{}
			}
			out[subject][category] = key
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("keys: load keys: %w", err)
		}
	}
	return out, nil
}

// CreateMissing makes the data key of the category for each of the
// subjects, in one statement per 500 of them, where no key row exists: a
// destroyed key's tombstone stays, and a key another process made meanwhile
// is kept. Callers pass the subjects they found without a key (Keys), so
// that a list of people each sealed a value for the first time (a
// campaign's first mail) does not make their keys one by one.
func (k *Keyring) CreateMissing(ctx context.Context, q store.Q, subjectIDs []string, category string) error {
	m := k.current.Load()
	now := k.clock.Now()
	sqlite := k.db != nil && k.db.Engine == store.SQLite
	for start := 0; start < len(subjectIDs); start += 500 {
		chunk := subjectIDs[start:min(start+500, len(subjectIDs))]
		rows := make([]string, len(chunk))
		args := make([]any, 0, 5*len(chunk))
		key := make([]byte, KeySize)
		for i, id := range chunk {
			if err := checkNames(id, category); err != nil {
				return err
			}
			rand.Read(key)
			args = append(args, id, category, m.wrap(id, category, key), m.ID, now)
			if sqlite {
				// Plain "?": SQLite looks "$N" names up by a linear search.
				rows[i] = "(?, ?, ?, ?, ?)"
			} else {
				n := len(args) - 5
				rows[i] = fmt.Sprintf("($%d, $%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4, n+5)
			}
		}
		clear(key)
		if _, err := q.ExecContext(ctx, `INSERT INTO data_keys (subject_id, category, wrapped, master_id, created_at) VALUES `+
			strings.Join(rows, ", ")+` ON CONFLICT (subject_id, category) DO NOTHING`, args...); err != nil {
			return fmt.Errorf("keys: create data keys: %w", err)
		}
	}
	return nil
}

// KeyFor returns the subject's key for the category, creating it when
// there is none (a destroyed one is returned destroyed: see Revive).
func (k *Keyring) KeyFor(ctx context.Context, q store.Q, subjectID, category string) (*Key, error) {
	if err := checkNames(subjectID, category); err != nil {
		return nil, err
	}
	aead, err := k.dataKey(ctx, q, subjectID, category, true)
	if errors.Is(err, ErrShredded) {
		return &Key{subject: subjectID, category: category, destroyed: true}, nil
	}
	if err != nil {
		return nil, err
	}
	return &Key{subject: subjectID, category: category, aead: aead}, nil
}

// itemAAD binds an item key to its subject, category and item.
func itemAAD(subjectID, category, item string) []byte {
	return []byte("steward item key v1|" + subjectID + "|" + category + "|" + item)
}

// ItemKey returns the key of one erasable item of the subject, wrapped by
// the subject's key of the category (parent) and created on first use
// when create is set. A destroyed item key, or one whose category key was
// destroyed, is not Usable.
func (k *Keyring) ItemKey(ctx context.Context, q store.Q, parent *Key, item string, create bool) (*Key, error) {
	if item == "" || len(item) > 256 || strings.ContainsAny(item, "|\x00") {
		return nil, fault.FieldError("item", "an item id must be 1 to 256 bytes without '|'")
	}
	if !parent.Usable() {
		return &Key{subject: parent.subject, category: parent.category + "/" + item, destroyed: true}, nil
	}
	var wrapped []byte
	var destroyed sql.NullTime
	err := q.QueryRowContext(ctx, `SELECT wrapped, destroyed_at FROM item_keys WHERE subject_id = $1 AND category = $2 AND item = $3`,
		parent.subject, parent.category, item).Scan(&wrapped, &destroyed)
	switch {
	case errors.Is(err, sql.ErrNoRows) && create:
		raw := make([]byte, KeySize)
		rand.Read(raw)
		var nonce [12]byte
		rand.Read(nonce[:])
		w := append([]byte{wrapVersion}, nonce[:]...)
		w = parent.aead.Seal(w, nonce[:], raw, itemAAD(parent.subject, parent.category, item))
		clear(raw)
		if _, err := q.ExecContext(ctx, `INSERT INTO item_keys (subject_id, category, item, wrapped, created_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (subject_id, category, item) DO NOTHING`, parent.subject, parent.category, item, w, k.clock.Now()); err != nil {
			return nil, fmt.Errorf("keys: create item key: %w", err)
		}
		return k.ItemKey(ctx, q, parent, item, false)
	case errors.Is(err, sql.ErrNoRows):
		return &Key{subject: parent.subject, category: parent.category + "/" + item, destroyed: true}, nil
	case err != nil:
		return nil, fmt.Errorf("keys: read item key: %w", err)
	}
	if destroyed.Valid || wrapped == nil {
		return &Key{subject: parent.subject, category: parent.category + "/" + item, destroyed: true}, nil
	}
	if len(wrapped) < 1+12 || wrapped[0] != wrapVersion {
		return nil, fmt.Errorf("keys: item key of %s/%s/%s: %w", parent.subject, parent.category, item, ErrCorrupt)
	}
	raw, err := parent.aead.Open(nil, wrapped[1:13], wrapped[13:], itemAAD(parent.subject, parent.category, item))
	if err != nil {
		return nil, fmt.Errorf("keys: item key of %s/%s/%s: %w", parent.subject, parent.category, item, ErrCorrupt)
	}
	defer clear(raw)
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("keys: item key: %w", err)
	}
	a, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keys: item key: %w", err)
	}
	return &Key{subject: parent.subject, category: parent.category + "/" + item, aead: a}, nil
}

// DestroyItem shreds one item's key: the item, in every copy, can never be
// opened again. Idempotent; the row stays as a tombstone.
func (k *Keyring) DestroyItem(ctx context.Context, q store.Q, subjectID, category, item string) error {
	now := k.clock.Now()
	if k.db != nil && k.db.Engine == store.SQLite {
		if _, err := q.ExecContext(ctx, `UPDATE item_keys SET wrapped = zeroblob(length(wrapped))
			WHERE subject_id = $1 AND category = $2 AND item = $3 AND wrapped IS NOT NULL`, subjectID, category, item); err != nil {
			return fmt.Errorf("keys: destroy item key: %w", err)
		}
	}
	if _, err := q.ExecContext(ctx, `UPDATE item_keys SET wrapped = NULL, destroyed_at = $4
		WHERE subject_id = $1 AND category = $2 AND item = $3 AND destroyed_at IS NULL`, subjectID, category, item, now); err != nil {
		return fmt.Errorf("keys: destroy item key: %w", err)
	}
	return nil
}
