// Package keys owns the master key and the per-subject data keys that
// encrypt sensitive fields, and with them crypto-shredding: destroying a
// subject's data key for a category makes every field sealed under it
// unreadable.
//
// The master key (32 bytes) comes from STEWARD_MASTER_KEY or a key file and
// never touches the database. Each subject gets one random 256-bit data key
// per category that holds sensitive fields, created on first use and stored
// in data_keys wrapped (AES-256-GCM) by the master key, bound to its subject
// and category. Fields are sealed with AES-256-GCM under the data key, a
// random 96-bit nonce and the subject id and category as additional data,
// so a sealed value moved to another subject's row does not open.
//
// What destroying a key protects, honestly. Destroy overwrites the wrapped
// key with NULL. From then on nobody — not even someone holding the master
// key — can open the subject's fields of that category from the live
// database, from any copy of the database taken after the destroy, or from
// any copy of the ciphertext that lacks the key table (an exported column, a
// log line, one table's dump). A backup taken before the destroy still holds
// the wrapped key, and whoever has that backup and the master key can open
// it: nothing can reach back into copies that already exist. So:
//   - restoring an older backup brings erased data back until the rights
//     engine's reapply (`steward rights reapply`) destroys again every key
//     erased since, from its pseudonymous erasure record; run it after
//     every restore;
//   - keeping the master key out of the backups (STEWARD_MASTER_KEY or a key
//     file stored elsewhere) makes an old backup useless on its own, which is
//     why a development key created in the data directory is warned about;
//   - rotating the master key and then discarding the old one makes every
//     backup taken before the rotation unreadable for all sealed fields,
//     which is the way to age old backups out.
//
// The database engines themselves may keep the old wrapped bytes for a
// while after the overwrite: PostgreSQL in the dead tuple and the WAL until
// VACUUM and WAL recycling, SQLite in its WAL until a checkpoint (Destroy
// overwrites the bytes in place on SQLite before clearing them, so the main
// file does not keep them). A physical copy of the files taken in that
// window is, for this purpose, a backup taken before the destroy.
package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"golang.org/x/crypto/hkdf"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the size of master and data keys in bytes (AES-256).
const KeySize = 32

// EnvMasterKey is the environment variable holding the base64 master key.
const EnvMasterKey = "STEWARD_MASTER_KEY"

// Master is the key that wraps every data key.
type Master struct {
	// ID is the first 8 hex digits of the SHA-256 of the key: stored beside
	// each wrapped key so a wrong or old master is named, not guessed.
	ID   string
	aead cipher.AEAD
	// prk is the HKDF pseudo-random key extracted from the master key, for
	// Derive. The master key itself is not kept outside the AEAD.
	prk []byte
}

// NewMaster returns a master key from 32 bytes.
func NewMaster(key []byte) (*Master, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("keys: a master key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("keys: master key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keys: master key: %w", err)
	}
	sum := sha256.Sum256(key)
	return &Master{ID: hex.EncodeToString(sum[:4]), aead: aead, prk: hkdf.Extract(sha256.New, key, []byte("steward master key derivation"))}, nil
}

// GenerateMaster returns a new random master key and its base64 text, the
// form STEWARD_MASTER_KEY and key files take.
func GenerateMaster() (*Master, string, error) {
	key := make([]byte, KeySize)
	rand.Read(key)
	m, err := NewMaster(key)
	if err != nil {
		return nil, "", err
	}
	return m, base64.StdEncoding.EncodeToString(key), nil
}

// Derive returns n bytes of key material for one use, named by label (for
// example "identity throttle v1"): HKDF-SHA-256 over the master key, so
// every secret of a deployment follows from the one key the operator
// keeps, and different labels give independent keys.
func (m *Master) Derive(label string, n int) []byte {
	out := make([]byte, n)
	if _, err := io.ReadFull(hkdf.Expand(sha256.New, m.prk, []byte(label)), out); err != nil {
		panic("keys: hkdf expand: " + err.Error()) // only for n > 255*32
	}
	return out
}

// String names the key by its id only.
func (m *Master) String() string { return "master key " + m.ID }

// LogValue names the key by its id only.
func (m *Master) LogValue() slog.Value { return slog.StringValue(m.ID) }

const wrapVersion = 1

// wrapAAD binds a wrapped data key to its row, so a wrapped key copied to
// another subject or category does not unwrap.
func wrapAAD(subjectID, category string) []byte {
	return []byte("steward data key v1|" + subjectID + "|" + category)
}

func (m *Master) wrap(subjectID, category string, dataKey []byte) []byte {
	var nonce [12]byte
	rand.Read(nonce[:])
	out := make([]byte, 0, 1+len(nonce)+len(dataKey)+m.aead.Overhead())
	out = append(out, wrapVersion)
	out = append(out, nonce[:]...)
	return m.aead.Seal(out, nonce[:], dataKey, wrapAAD(subjectID, category))
}

func (m *Master) unwrap(subjectID, category string, wrapped []byte) ([]byte, error) {
	if len(wrapped) != 1+12+KeySize+m.aead.Overhead() || wrapped[0] != wrapVersion {
		return nil, errors.New("wrapped data key has an unknown format")
	}
	key, err := m.aead.Open(nil, wrapped[1:13], wrapped[13:], wrapAAD(subjectID, category))
	if err != nil {
		return nil, errors.New("wrapped data key fails authentication (altered, or copied from another subject or category)")
	}
	return key, nil
}

// LoadMaster finds the master key. STEWARD_MASTER_KEY (the base64 of 32
// bytes) wins; else keyFile (32 raw bytes or their base64); else, only in
// development, dataDir/master.key, created (0600) when missing, with a
// warning: a key beside the data ends up in the same backups, and then
// crypto-shredding no longer protects those backups. Otherwise an error
// says how to provide one.
func LoadMaster(env func(string) string, keyFile, dataDir string, dev bool, log *slog.Logger) (*Master, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if v := strings.TrimSpace(env(EnvMasterKey)); v != "" {
		key, err := decodeBase64Key(v)
		if err != nil {
			return nil, fmt.Errorf("keys: %s must be the base64 of %d random bytes (for example the output of `openssl rand -base64 32`): %w", EnvMasterKey, KeySize, err)
		}
		return NewMaster(key)
	}
	if keyFile != "" {
		return loadKeyFile(keyFile, dataDir, log)
	}
	path := filepath.Join(dataDir, "master.key")
	if !dev {
		msg := fmt.Sprintf("keys: no master key: set %s to the base64 of %d random bytes (`openssl rand -base64 32`) or pass --key-file FILE (%d raw bytes or their base64), and keep it outside the data directory and its backups; --dev creates one in the data directory, for development only",
			EnvMasterKey, KeySize, KeySize)
		if _, err := os.Stat(path); err == nil {
			msg += fmt.Sprintf(" (a development key exists at %s: to keep using it, move it out of the data directory and pass --key-file)", path)
		}
		return nil, errors.New(msg)
	}
	const warning = "keys: DEVELOPMENT MASTER KEY in the data directory: a key beside the data ends up in the same backups, so erased (crypto-shredded) data stays readable from them; in production set " + EnvMasterKey + " or --key-file"
	m, err := readKeyFile(path)
	if err == nil {
		log.Warn(warning, "path", path, "key", m.ID)
		return m, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("keys: create data dir: %w", err)
	}
	m, text, err := GenerateMaster()
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another process starting at the same time wrote it first.
		if m, err = readKeyFile(path); err != nil {
			return nil, err
		}
		log.Warn(warning, "path", path, "key", m.ID)
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keys: create development master key: %w", err)
	}
	if _, err := f.WriteString(text + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("keys: write development master key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("keys: write development master key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("keys: write development master key: %w", err)
	}
	log.Warn(warning+" (created now)", "path", path, "key", m.ID)
	return m, nil
}

func loadKeyFile(path, dataDir string, log *slog.Logger) (*Master, error) {
	m, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	if dataDir != "" {
		absKey, err1 := filepath.Abs(path)
		absData, err2 := filepath.Abs(dataDir)
		if err1 == nil && err2 == nil {
			if rel, err := filepath.Rel(absData, absKey); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				log.Warn("keys: the master key file is inside the data directory: it ends up in the same backups as the data, so erased (crypto-shredded) data stays readable from them", "path", path)
			}
		}
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		log.Warn("keys: the master key file can be read by other users of this machine: chmod 600 it", "path", path, "mode", st.Mode().Perm().String())
	}
	return m, nil
}

// readKeyFile reads a key file holding the 32 raw bytes or their base64.
func readKeyFile(path string) (*Master, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("keys: key file %s: %w", path, err)
		}
		return nil, fmt.Errorf("keys: read key file %s: %w", path, err)
	}
	if len(data) == KeySize {
		return NewMaster(data)
	}
	key, err := decodeBase64Key(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("keys: key file %s must hold %d raw bytes or their base64: %w", path, KeySize, err)
	}
	return NewMaster(key)
}

func decodeBase64Key(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(s); err == nil {
			if len(key) != KeySize {
				return nil, fmt.Errorf("it decodes to %d bytes, not %d", len(key), KeySize)
			}
			return key, nil
		}
	}
	return nil, errors.New("it is not valid base64")
}

// ReadKeyFile reads a master key file: 32 raw bytes or their base64.
func ReadKeyFile(path string) (*Master, error) { return readKeyFile(path) }
