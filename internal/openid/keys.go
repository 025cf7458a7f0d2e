package openid

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"

	"steward/internal/clock"
	"steward/internal/door"
	"steward/internal/store"
)

// keyring holds the signing keys: the newest signs, every key younger
// than RotateEvery+KeepRetired is published. Keys are read from the
// database (so every process signs with the same newest key) and cached
// for a minute.
type keyring struct {
	db    *store.DB
	clock clock.Clock
	door  *door.Door

	mu     sync.Mutex
	keys   []*signingKey // newest first
	loaded time.Time
}

// keyCacheTTL bounds how long a process keeps a key list another process
// already changed; a new key signs only signDelay after it was made, so
// every process publishes it before any token it signed goes out.
const (
	keyCacheTTL = time.Minute
	signDelay   = 2 * keyCacheTTL
)

// signingKey is one RSA key.
type signingKey struct {
	id      string
	key     *rsa.PrivateKey
	created time.Time
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

// publicKey is a published key.
type publicKey struct{ k *signingKey }

func (p publicKey) ID() string                         { return p.k.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.k.key.PublicKey }

var _ op.SigningKey = (*signingKey)(nil)
var _ op.Key = publicKey{}

func newKeyring(db *store.DB, c clock.Clock, d *door.Door) *keyring {
	return &keyring{db: db, clock: c, door: d}
}

// keyLabel is the label of the signing keys' sealing key.
const keyLabel = "openid signing keys v1"

// add makes, seals and stores a new key, which signs from now on.
func (k *keyring) add(ctx context.Context) error {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	id := rand.Text()[:16]
	sealed, err := k.door.SealSecret(keyLabel, x509.MarshalPKCS1PrivateKey(priv), []byte(id))
	if err != nil {
		return err
	}
	if _, err := k.db.ExecContext(ctx, `INSERT INTO openid_keys (id, algorithm, private_sealed, created_at) VALUES ($1, 'RS256', $2, $3)`,
		id, sealed, k.clock.Now()); err != nil {
		return fmt.Errorf("openid: store key: %w", err)
	}
	return nil
}

// current returns the published keys, newest first, reading them again
// when the cache is old: the newest, and each older one until
// KeepRetired after the key that replaced it was made. A key that cannot
// be opened (the master key was replaced) is skipped.
func (k *keyring) current(ctx context.Context) ([]*signingKey, error) {
	now := k.clock.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.keys) > 0 && now.Sub(k.loaded) < keyCacheTTL && !now.Before(k.loaded) {
		return k.keys, nil
	}
	all, err := k.stored(ctx)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 || all[0].key == nil {
		// The first use (or a master key replaced): make a key. Two
		// processes doing so at once both publish theirs.
		if err := k.add(ctx); err != nil {
			return nil, err
		}
		if all, err = k.stored(ctx); err != nil {
			return nil, err
		}
	}
	var keys []*signingKey
	for i, sk := range all {
		if i > 0 && now.Sub(all[i-1].created) >= KeepRetired {
			break
		}
		if sk.key != nil {
			keys = append(keys, sk)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("openid: no signing key (run the rotation job)")
	}
	k.keys, k.loaded = keys, now
	return keys, nil
}

// stored reads every stored key, newest first; key is nil for one that
// does not open.
func (k *keyring) stored(ctx context.Context) ([]*signingKey, error) {
	rows, err := k.db.QueryContext(ctx, `SELECT id, private_sealed, created_at FROM openid_keys ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("openid: keys: %w", err)
	}
	defer rows.Close()
	var out []*signingKey
	for rows.Next() {
		var id string
		var sealed []byte
		var created time.Time
		if err := rows.Scan(&id, &sealed, &created); err != nil {
			return nil, fmt.Errorf("openid: keys: %w", err)
		}
		key, _ := k.open(id, sealed)
		out = append(out, &signingKey{id: id, key: key, created: created.UTC()})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("openid: keys: %w", err)
	}
	return out, nil
}

func (k *keyring) open(id string, sealed []byte) (*rsa.PrivateKey, error) {
	der, err := k.door.OpenSecret(keyLabel, sealed, []byte(id))
	if err != nil {
		return nil, err
	}
	return x509.ParsePKCS1PrivateKey(der)
}

// rotate adds a key when the newest is RotateEvery old or does not
// open, then prunes. The job runner runs it once a day in one process.
func (k *keyring) rotate(ctx context.Context) error {
	all, err := k.stored(ctx)
	if err != nil {
		return err
	}
	if len(all) == 0 || all[0].key == nil || k.clock.Now().Sub(all[0].created) >= RotateEvery {
		if err := k.add(ctx); err != nil {
			return err
		}
		k.mu.Lock()
		k.loaded = time.Time{}
		k.mu.Unlock()
	}
	_, err = k.prune(ctx)
	return err
}

// prune deletes the keys no longer published: nothing valid can have
// been signed with them.
func (k *keyring) prune(ctx context.Context) (int64, error) {
	all, err := k.stored(ctx)
	if err != nil {
		return 0, err
	}
	now := k.clock.Now()
	var n int64
	for i := 1; i < len(all); i++ {
		if now.Sub(all[i-1].created) < KeepRetired {
			continue
		}
		res, err := k.db.ExecContext(ctx, `DELETE FROM openid_keys WHERE id = $1`, all[i].id)
		if err != nil {
			return n, fmt.Errorf("openid: prune keys: %w", err)
		}
		d, _ := res.RowsAffected()
		n += d
	}
	return n, nil
}

// signer chooses the key that signs among the published ones (newest
// first): the newest made at least signDelay ago, or, when every one is
// younger (the first key of a deployment), the oldest.
func signer(keys []*signingKey, now time.Time) *signingKey {
	for _, k := range keys {
		if now.Sub(k.created) >= signDelay {
			return k
		}
	}
	return keys[len(keys)-1]
}
