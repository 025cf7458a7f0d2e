package door

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
)

// SealSecret seals one of Steward's own secrets — not personal data, but
// something a database dump must not give away, such as the OpenID
// provider's signing keys — with AES-256-GCM under a key derived from the
// master key for label. aad binds it to where it is stored (the row's
// id). A new master key makes it unreadable: its owner makes a new one.
func (o *Door) SealSecret(label string, plain, aad []byte) ([]byte, error) {
	aead, err := o.secretAEAD(label)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, plain, aad), nil
}

// OpenSecret opens what SealSecret sealed with the same label and aad.
func (o *Door) OpenSecret(label string, sealed, aad []byte) ([]byte, error) {
	aead, err := o.secretAEAD(label)
	if err != nil {
		return nil, err
	}
	n := aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("door: sealed secret too short")
	}
	return aead.Open(nil, sealed[:n], sealed[n:], aad)
}

func (o *Door) secretAEAD(label string) (cipher.AEAD, error) {
	block, err := aes.NewCipher(o.d.Master.Derive("door secret "+label, 32))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
