package identitytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// Passkey is a software authenticator for tests: one ECDSA P-256
// credential scoped to an RP ID, its signature counter (set Counter to
// make it go forward or back), and the attestation "none".
type Passkey struct {
	t       testing.TB
	key     *ecdsa.PrivateKey
	id      []byte
	rpID    string
	Counter uint32
}

// NewPasskey makes a new credential for the relying party rpID.
func NewPasskey(t testing.TB, rpID string) *Passkey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	rand.Read(id)
	return &Passkey{t: t, key: k, id: id, rpID: rpID}
}

var b64 = base64.RawURLEncoding

// challengeOf reads the challenge out of creation or assertion options.
func challengeOf(t testing.TB, options []byte) string {
	t.Helper()
	var o struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &o); err != nil || o.PublicKey.Challenge == "" {
		t.Fatalf("options %s: %v", options, err)
	}
	return o.PublicKey.Challenge
}

func (k *Passkey) clientData(typ, challenge, origin string) []byte {
	raw, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": origin, "crossOrigin": false})
	return raw
}

func (k *Passkey) authData(flags byte, attested []byte) []byte {
	rp := sha256.Sum256([]byte(k.rpID))
	out := append(rp[:], flags)
	out = binary.BigEndian.AppendUint32(out, k.Counter)
	return append(out, attested...)
}

// Register answers creation options (JSON, as the server gave them) as
// navigator.credentials.create would in a page of origin.
func (k *Passkey) Register(options []byte, origin string) []byte {
	k.t.Helper()
	pub, err := k.key.PublicKey.Bytes() // 0x04 || x || y
	if err != nil {
		k.t.Fatal(err)
	}
	cose, err := cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: pub[1:33], -3: pub[33:65]})
	if err != nil {
		k.t.Fatal(err)
	}
	attested := make([]byte, 16) // AAGUID: none
	attested = binary.BigEndian.AppendUint16(attested, uint16(len(k.id)))
	attested = append(append(attested, k.id...), cose...)
	const up, uv, at = 0x01, 0x04, 0x40
	obj, err := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": k.authData(up|uv|at, attested)})
	if err != nil {
		k.t.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]any{
		"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(k.clientData("webauthn.create", challengeOf(k.t, options), origin)),
			"attestationObject": b64.EncodeToString(obj),
			"transports":        []string{"internal"},
		},
		"clientExtensionResults": map[string]any{},
	})
	return raw
}

// Assert answers assertion options as navigator.credentials.get would in
// a page of origin, with the counter as it stands.
func (k *Passkey) Assert(options []byte, origin string) []byte {
	k.t.Helper()
	cd := k.clientData("webauthn.get", challengeOf(k.t, options), origin)
	ad := k.authData(0x01|0x04, nil)
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, ad...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, digest[:])
	if err != nil {
		k.t.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]any{
		"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(cd),
			"authenticatorData": b64.EncodeToString(ad),
			"signature":         b64.EncodeToString(sig),
		},
		"clientExtensionResults": map[string]any{},
	})
	return raw
}
