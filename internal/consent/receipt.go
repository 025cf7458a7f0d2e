package consent

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/hkdf"
)

// ReceiptVersion names the receipt format: the field names of the Kantara
// Initiative Consent Receipt v1.1, extended with the ISO/IEC TS 27560
// record fields Steward keeps (state, policy version and hash, collection
// point, evidence) and an Ed25519 signature.
const ReceiptVersion = "KI-CR-v1.1.0+steward-1"

// SigningInfo is the HKDF info string that derives the receipt-signing
// key from the master key. Changing it changes every deployment's key.
const SigningInfo = "steward receipt signing v1"

// Receipt is what a person keeps as proof of a consent change. It holds
// only pseudonymous ids and coarse evidence, so it can be shown, mailed or
// archived without exposing more than the ledger row it mirrors.
type Receipt struct {
	Version          string       `json:"version"`
	Jurisdiction     string       `json:"jurisdiction,omitempty"`
	ConsentTimestamp int64        `json:"consentTimestamp"` // Unix seconds, as Kantara specifies
	IssuedAt         string       `json:"issuedAt"`         // RFC 3339 with microseconds
	CollectionMethod string       `json:"collectionMethod"`
	ConsentReceiptID string       `json:"consentReceiptID"`
	Language         string       `json:"language"`
	PIIPrincipalID   string       `json:"piiPrincipalId"`
	PIIControllers   []Controller `json:"piiControllers"`
	PolicyURL        string       `json:"policyUrl"`
	Services         []Service    `json:"services"`
	Sensitive        bool         `json:"sensitive"`
	SPICat           []string     `json:"spiCat"`

	State           string   `json:"state"`
	Scope           string   `json:"scope,omitempty"`
	PolicyVersion   int      `json:"policyVersion"`
	PolicyHash      string   `json:"policyHash"`
	NoticeHash      string   `json:"noticeHash,omitempty"`
	CollectionPoint string   `json:"collectionPoint"`
	Evidence        Evidence `json:"evidence"`

	Signature *Signature `json:"signature,omitempty"`
}

// Controller is the data controller named in a receipt.
type Controller struct {
	Name    string `json:"piiController"`
	Contact string `json:"contact,omitempty"`
	Address string `json:"address,omitempty"`
	Email   string `json:"email,omitempty"`
}

// Service groups the purposes of a receipt, as Kantara's schema does.
type Service struct {
	Service  string           `json:"service"`
	Purposes []ReceiptPurpose `json:"purposes"`
}

// ReceiptPurpose is one purpose the receipt is about.
type ReceiptPurpose struct {
	Purpose              string   `json:"purpose"`
	PurposeID            string   `json:"purposeId"`
	ConsentType          string   `json:"consentType"`
	PurposeCategory      []string `json:"purposeCategory"`
	PIICategory          []string `json:"piiCategory"`
	PrimaryPurpose       bool     `json:"primaryPurpose"`
	Termination          string   `json:"termination"`
	ThirdPartyDisclosure bool     `json:"thirdPartyDisclosure"`
	ThirdPartyName       string   `json:"thirdPartyName,omitempty"`
}

// Signature is the detached Ed25519 signature over the RFC 8785 canonical
// form of the receipt without its "signature" member.
type Signature struct {
	Alg   string `json:"alg"` // "EdDSA"
	KeyID string `json:"kid"`
	Value string `json:"value"` // base64url, no padding
}

// Signer signs receipts with the deployment's Ed25519 key.
type Signer struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
	kid  string
}

// NewSigner returns a signer for the Ed25519 private key with this 32-byte
// seed.
func NewSigner(seed []byte) (*Signer, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("consent: signing seed must be %d bytes, got %d", ed25519.SeedSize, len(seed))
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	return &Signer{priv: priv, pub: pub, kid: KeyID(pub)}, nil
}

// DeriveSigner derives the deployment's receipt-signing key from the master
// key with HKDF-SHA-256 (info SigningInfo). Deriving rather than storing
// means no extra secret to back up: the same master key always yields the
// same signing key, and rotating the master key rotates it (receipts signed
// before stay verifiable with the old public key, which the receipt names
// by kid).
func DeriveSigner(masterKey []byte) (*Signer, error) {
	seed, err := derive(masterKey, SigningInfo, ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	return NewSigner(seed)
}

func derive(masterKey []byte, info string, n int) ([]byte, error) {
	if len(masterKey) < 32 {
		return nil, errors.New("consent: master key must be at least 32 bytes")
	}
	out := make([]byte, n)
	if _, err := io.ReadFull(hkdf.New(sha256.New, masterKey, nil, []byte(info)), out); err != nil {
		return nil, fmt.Errorf("consent: derive key: %w", err)
	}
	return out, nil
}

// PublicKey returns the verification key.
func (s *Signer) PublicKey() ed25519.PublicKey { return s.pub }

// KeyID returns the key id receipts carry.
func (s *Signer) KeyID() string { return s.kid }

// KeyID is the first 16 hex digits of SHA-256 of the raw public key.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// JWK returns the public key as a JSON Web Key (RFC 8037), the form served
// at /.well-known/steward/receipt-key.
func (s *Signer) JWK() []byte {
	b, _ := json.Marshal(map[string]string{
		"kty": "OKP",
		"crv": "Ed25519",
		"alg": "EdDSA",
		"use": "sig",
		"kid": s.kid,
		"x":   base64.RawURLEncoding.EncodeToString(s.pub),
	})
	return b
}

// Sign fills in the receipt's signature and returns it as indented JSON.
func (s *Signer) Sign(r Receipt) ([]byte, error) {
	r.Signature = nil
	body, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("consent: encode receipt: %w", err)
	}
	canon, err := canonicalJSON(body)
	if err != nil {
		return nil, err
	}
	r.Signature = &Signature{
		Alg:   "EdDSA",
		KeyID: s.kid,
		Value: base64.RawURLEncoding.EncodeToString(ed25519.Sign(s.priv, canon)),
	}
	out, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("consent: encode receipt: %w", err)
	}
	return out, nil
}

// ErrBadReceipt is returned (wrapped) for every receipt that does not
// verify, so callers can tell a bad receipt from an I/O error.
var ErrBadReceipt = errors.New("receipt does not verify")

// VerifyReceipt checks a receipt offline against the deployment's public
// key: the signature must be an Ed25519 signature by pub over the canonical
// form of every other member of the receipt. Any change to any member —
// adding, removing or editing one — makes it fail; re-indenting does not.
func VerifyReceipt(pub ed25519.PublicKey, receiptJSON []byte) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("consent: %w: the public key is not an Ed25519 key", ErrBadReceipt)
	}
	if len(receiptJSON) > 1<<20 {
		return fmt.Errorf("consent: %w: receipt is too large", ErrBadReceipt)
	}
	// Decoded as for signing, so only a document whose canonical form is
	// the signed bytes verifies.
	v, err := decodeDocument(receiptJSON)
	if err != nil {
		return fmt.Errorf("consent: %w: %v", ErrBadReceipt, err)
	}
	members, ok := v.([]member)
	if !ok {
		return fmt.Errorf("consent: %w: a receipt is a JSON object", ErrBadReceipt)
	}
	var sigVal any
	rest := make([]member, 0, len(members))
	for _, m := range members {
		if m.name == "signature" {
			sigVal = m.value
			continue
		}
		rest = append(rest, m)
	}
	sig, err := parseSignature(sigVal)
	if err != nil {
		return fmt.Errorf("consent: %w: %v", ErrBadReceipt, err)
	}
	if sig.Alg != "EdDSA" {
		return fmt.Errorf("consent: %w: unsupported signature algorithm %q", ErrBadReceipt, sig.Alg)
	}
	if sig.KeyID != "" && sig.KeyID != KeyID(pub) {
		return fmt.Errorf("consent: %w: signed by key %s, not by key %s", ErrBadReceipt, sig.KeyID, KeyID(pub))
	}
	// Strict, and re-encoded to the same text: the decoder would also take
	// line breaks and stray low bits, other spellings of one signature.
	raw, err := base64.RawURLEncoding.Strict().DecodeString(sig.Value)
	if err != nil || len(raw) != ed25519.SignatureSize || base64.RawURLEncoding.EncodeToString(raw) != sig.Value {
		return fmt.Errorf("consent: %w: malformed signature value", ErrBadReceipt)
	}
	var buf bytes.Buffer
	if err := writeCanonical(&buf, rest); err != nil {
		return fmt.Errorf("consent: %w: %v", ErrBadReceipt, err)
	}
	if !ed25519.Verify(pub, buf.Bytes(), raw) {
		return fmt.Errorf("consent: %w: the signature does not match the contents (the receipt was changed or signed by another key)", ErrBadReceipt)
	}
	return nil
}

func parseSignature(v any) (Signature, error) {
	members, ok := v.([]member)
	if !ok {
		return Signature{}, errors.New("the receipt has no signature object")
	}
	var s Signature
	for _, m := range members {
		str, _ := m.value.(string)
		switch m.name {
		case "alg":
			s.Alg = str
		case "kid":
			s.KeyID = str
		case "value":
			s.Value = str
		}
	}
	if s.Value == "" {
		return Signature{}, errors.New("the signature has no value")
	}
	return s, nil
}

// ParsePublicKey reads an Ed25519 public key given as a JSON Web Key (as
// served at /.well-known/steward/receipt-key), a JWK set, a PEM "PUBLIC
// KEY" block, or the 32 raw key bytes in base64, base64url or hex.
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	s := strings.TrimSpace(string(data))
	switch {
	case strings.HasPrefix(s, "{"):
		var doc struct {
			Kty  string `json:"kty"`
			Crv  string `json:"crv"`
			X    string `json:"x"`
			Keys []struct {
				Kty string `json:"kty"`
				Crv string `json:"crv"`
				X   string `json:"x"`
			} `json:"keys"`
		}
		if err := json.Unmarshal([]byte(s), &doc); err != nil {
			return nil, fmt.Errorf("consent: public key: not a JSON Web Key: %w", err)
		}
		if doc.X == "" {
			for _, k := range doc.Keys {
				if k.Kty == "OKP" && k.Crv == "Ed25519" {
					doc.Kty, doc.Crv, doc.X = k.Kty, k.Crv, k.X
					break
				}
			}
		}
		if doc.Kty != "OKP" || doc.Crv != "Ed25519" {
			return nil, errors.New("consent: public key: the JSON Web Key is not an Ed25519 (OKP) key")
		}
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(doc.X, "="))
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return nil, errors.New("consent: public key: the JWK x member is not a 32-byte base64url value")
		}
		return ed25519.PublicKey(raw), nil
	case strings.HasPrefix(s, "-----BEGIN"):
		block, _ := pem.Decode([]byte(s))
		if block == nil || block.Type != "PUBLIC KEY" {
			return nil, errors.New("consent: public key: expected a PEM PUBLIC KEY block")
		}
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("consent: public key: %w", err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, errors.New("consent: public key: the PEM key is not Ed25519")
		}
		return pub, nil
	}
	if raw, err := hex.DecodeString(s); err == nil && len(raw) == ed25519.PublicKeySize {
		return ed25519.PublicKey(raw), nil
	}
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding} {
		if raw, err := enc.DecodeString(s); err == nil && len(raw) == ed25519.PublicKeySize {
			return ed25519.PublicKey(raw), nil
		}
	}
	return nil, errors.New("consent: public key: expected a JWK, a PEM PUBLIC KEY, or 32 bytes in base64 or hex")
}

// PEM returns the public key as a PEM PUBLIC KEY block.
func (s *Signer) PEM() []byte {
	der, _ := x509.MarshalPKIXPublicKey(s.pub)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}
