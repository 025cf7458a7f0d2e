package door

import (
	"context"
	"log/slog"

	"steward/internal/clock"
	"steward/internal/door/internal/keys"
	"steward/internal/registry"
	"steward/internal/store"
)

// Master is the master key: it wraps every data key and derives the
// deployment's other secrets (Derive). Only the door unwraps with it.
type Master = keys.Master

// KeySize is the size of master and data keys in bytes.
const KeySize = keys.KeySize

// EnvMasterKey is the environment variable holding the base64 master key.
const EnvMasterKey = keys.EnvMasterKey

// The errors of sealed values: ErrShredded when the key was destroyed
// (fault.NotFound), ErrCorrupt when a value or key was altered or moved,
// ErrWrongMaster when the process holds another master key, ErrTruncated
// when a sealed stream was cut.
var (
	ErrShredded    = keys.ErrShredded
	ErrCorrupt     = keys.ErrCorrupt
	ErrWrongMaster = keys.ErrWrongMaster
	ErrTruncated   = keys.ErrTruncated
)

// NewMaster returns a master key from 32 bytes.
func NewMaster(key []byte) (*Master, error) { return keys.NewMaster(key) }

// GenerateMaster returns a new random master key and its base64 text.
func GenerateMaster() (*Master, string, error) { return keys.GenerateMaster() }

// ReadKeyFile reads a master key file: 32 raw bytes or their base64.
func ReadKeyFile(path string) (*Master, error) { return keys.ReadKeyFile(path) }

// LoadMaster finds the master key: STEWARD_MASTER_KEY, else keyFile, else
// (development only) a key in the data directory (see keys.LoadMaster).
func LoadMaster(env func(string) string, keyFile, dataDir string, dev bool, log *slog.Logger) (*Master, error) {
	return keys.LoadMaster(env, keyFile, dataDir, dev, log)
}

// Migrations returns the schema of the keys the door keeps (module "keys",
// the name it had before the door owned it).
func Migrations() store.Migrations { return keys.Migrations() }

// Tables declares the keys' tables for the personal-data registry.
func Tables() []registry.Table { return keys.Tables() }

// RotateMaster re-wraps every data key of db under next (see
// keys.Keyring.Rotate): old is the master the keys are wrapped with now.
func RotateMaster(ctx context.Context, db *store.DB, old, next *Master, c clock.Clock) (int, error) {
	return keys.NewKeyring(db, old, c).Rotate(ctx, next)
}
