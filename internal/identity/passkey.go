package identity

// Passkeys (WebAuthn) as a second factor, beside the authenticator app:
// registration by a session that may add a factor, assertion by a session
// that owes one. The challenge of each ceremony stays on the server, bound
// to the session, and is spent by the first answer.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"steward/internal/audit"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/policy"
)

// passkeyTTL is how long a ceremony's challenge may be answered.
const passkeyTTL = 5 * time.Minute

// Ceremonies of passkey_challenges.
const (
	ceremonyRegister = "register"
	ceremonyLogin    = "login"
)

// newPasskeys builds the relying party from the base URL: its host is the
// RP ID and its origin the only one accepted. Browsers offer WebAuthn only
// in a secure context, so a base URL that is not https (but for localhost
// in development) leaves passkeys off, as does an IP address (an RP ID is
// a domain).
func newPasskeys(baseURL, name string, log *slog.Logger) (*webauthn.WebAuthn, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" {
		log.Info("identity: passkeys off: the base URL has no host")
		return nil, nil
	}
	host := u.Hostname()
	if u.Scheme != "https" && (u.Scheme != "http" || host != "localhost") {
		log.Info("identity: passkeys off: the base URL is not https")
		return nil, nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		// The RP ID must be a domain: browsers refuse an address.
		log.Info("identity: passkeys off: the base URL names an address, not a domain (use localhost in development)")
		return nil, nil
	}
	if name == "" {
		name = "Steward"
	}
	timeout := webauthn.TimeoutConfig{Enforce: false, Timeout: passkeyTTL, TimeoutUVD: passkeyTTL}
	w, err := webauthn.New(&webauthn.Config{
		RPID: host, RPDisplayName: name, RPOrigins: []string{u.Scheme + "://" + u.Host},
		Timeouts: webauthn.TimeoutsConfig{Login: timeout, Registration: timeout},
	})
	if err != nil {
		return nil, fmt.Errorf("identity: passkeys: %w", err)
	}
	return w, nil
}

// PasskeysEnabled reports whether passkeys can be used at this base URL.
func (s *Service) PasskeysEnabled() bool { return s.passkeys != nil }

func errNoPasskeys() error {
	return fault.New(fault.Conflict, "passkeys need the site to be served over https")
}

// passkeyFactor is one confirmed passkey of an account.
type passkeyFactor struct {
	id   string
	cred webauthn.Credential
}

// passkeyUser is an account as WebAuthn sees it. Its handle is a digest of
// the subject id, so the authenticator holds nothing that names the
// person and the same account always has the same handle.
type passkeyUser struct {
	subjectID string
	factors   []passkeyFactor
}

func (u passkeyUser) WebAuthnID() []byte {
	h := sha256.Sum256([]byte("steward passkey user v1|" + u.subjectID))
	return h[:]
}

func (u passkeyUser) WebAuthnName() string        { return "account " + shortID(u.subjectID) }
func (u passkeyUser) WebAuthnDisplayName() string { return u.WebAuthnName() }

func (u passkeyUser) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, len(u.factors))
	for i, f := range u.factors {
		out[i] = f.cred
	}
	return out
}

// loadPasskeyUser opens the account's confirmed passkeys.
func (s *Service) loadPasskeyUser(ctx context.Context, tx *sql.Tx, subjectID string) (passkeyUser, error) {
	u := passkeyUser{subjectID: subjectID}
	rows, err := tx.QueryContext(ctx, `SELECT id, secret_sealed FROM second_factors WHERE subject_id = $1 AND kind = 'passkey' AND confirmed_at IS NOT NULL ORDER BY created_at, id`,
		subjectID)
	if err != nil {
		return u, err
	}
	type sealedFactor struct {
		id     string
		sealed door.Sealed
	}
	var fs []sealedFactor
	for rows.Next() {
		var f sealedFactor
		if err := rows.Scan(&f.id, &f.sealed); err != nil {
			rows.Close()
			return u, err
		}
		fs = append(fs, f)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(fs) == 0 {
		return u, err
	}
	v, err := s.door.Subject(ctx, tx, door.System(policy.Security), subjectID)
	if err != nil {
		return u, err
	}
	for _, f := range fs {
		raw, err := v.Open(ctx, FieldPassword, f.sealed)
		if err != nil {
			return u, err
		}
		var c webauthn.Credential
		if err := json.Unmarshal([]byte(raw), &c); err != nil {
			return u, fmt.Errorf("identity: passkey %s: %w", f.id, err)
		}
		u.factors = append(u.factors, passkeyFactor{id: f.id, cred: c})
	}
	return u, nil
}

// sealPasskey seals a credential under the account's credential key.
func (s *Service) sealPasskey(ctx context.Context, tx *sql.Tx, subjectID string, c *webauthn.Credential) (door.Sealed, error) {
	raw, err := json.Marshal(c)
	if err != nil {
		return door.Sealed{}, err
	}
	v, err := s.door.Subject(ctx, tx, door.System(policy.Security), subjectID)
	if err != nil {
		return door.Sealed{}, err
	}
	return v.Seal(ctx, FieldPassword, string(raw))
}

func challengeKey(sessionID string) []byte {
	h := sha256.Sum256([]byte("steward passkey challenge v1|" + sessionID))
	return h[:]
}

// putChallenge keeps a ceremony's session data for the session, replacing
// an earlier one of the same ceremony. The user handle and the credential
// ids are left out: they are the account's, and are put back from it.
func (s *Service) putChallenge(ctx context.Context, tx *sql.Tx, sessionID, ceremony string, sd *webauthn.SessionData) error {
	kept := *sd
	kept.UserID, kept.AllowedCredentialIDs, kept.Expires = nil, nil, time.Time{}
	raw, err := json.Marshal(kept)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	if _, err := tx.ExecContext(ctx, `DELETE FROM passkey_challenges WHERE session_hash = $1 AND ceremony = $2`, challengeKey(sessionID), ceremony); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO passkey_challenges (session_hash, ceremony, data, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		challengeKey(sessionID), ceremony, string(raw), now, now.Add(passkeyTTL))
	return err
}

// takeChallenge spends the session's challenge of a ceremony: false when
// there is none, or it expired.
func (s *Service) takeChallenge(ctx context.Context, tx *sql.Tx, sessionID, ceremony string, now time.Time) (webauthn.SessionData, bool, error) {
	var sd webauthn.SessionData
	var raw string
	var expires time.Time
	err := tx.QueryRowContext(ctx, `DELETE FROM passkey_challenges WHERE session_hash = $1 AND ceremony = $2 RETURNING data, expires_at`,
		challengeKey(sessionID), ceremony).Scan(&raw, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return sd, false, nil
	}
	if err != nil {
		return sd, false, err
	}
	if !expires.After(now) {
		return sd, false, nil
	}
	if err := json.Unmarshal([]byte(raw), &sd); err != nil {
		return sd, false, fmt.Errorf("identity: passkey challenge: %w", err)
	}
	return sd, true, nil
}

// BeginPasskeyRegistration starts adding a passkey to the principal's
// account, under the same rule as an authenticator app (addingAllowed).
// It returns the options for navigator.credentials.create, as JSON.
func (s *Service) BeginPasskeyRegistration(ctx context.Context, p Principal) (json.RawMessage, error) {
	if s.passkeys == nil {
		return nil, errNoPasskeys()
	}
	if err := s.addingAllowed(p); err != nil {
		return nil, err
	}
	var out []byte
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		u, err := s.loadPasskeyUser(ctx, tx, p.Account.SubjectID)
		if err != nil {
			return err
		}
		creation, sd, err := s.passkeys.BeginRegistration(u,
			webauthn.WithExclusions(webauthn.Credentials(u.WebAuthnCredentials()).CredentialDescriptors()),
			webauthn.WithConveyancePreference(protocol.PreferNoAttestation))
		if err != nil {
			return err
		}
		if out, err = json.Marshal(creation); err != nil {
			return err
		}
		return s.putChallenge(ctx, tx, p.Session.ID, ceremonyRegister, sd)
	})
	if err != nil {
		return nil, fmt.Errorf("identity: begin passkey registration: %w", err)
	}
	return out, nil
}

// FinishPasskeyRegistration takes the browser's answer to the options of
// BeginPasskeyRegistration. The passkey counts from now, the session has
// given its second factor, the owner is told by mail, and — the first
// time — the account gets its recovery codes, returned once. A wrong
// answer counts as a failed second-factor attempt.
func (s *Service) FinishPasskeyRegistration(ctx context.Context, p Principal, response []byte, m Meta) ([]string, error) {
	if s.passkeys == nil {
		return nil, errNoPasskeys()
	}
	if err := s.addingAllowed(p); err != nil {
		return nil, err
	}
	parsed, perr := protocol.ParseCredentialCreationResponseBytes(response)
	var codes []string
	err := s.secondFactorAttempt(ctx, p, m, func(tx *sql.Tx, now time.Time) (bool, error) {
		sd, ok, err := s.takeChallenge(ctx, tx, p.Session.ID, ceremonyRegister, now)
		if err != nil || !ok {
			return false, err
		}
		if perr != nil {
			return false, nil
		}
		u, err := s.loadPasskeyUser(ctx, tx, p.Account.SubjectID)
		if err != nil {
			return false, err
		}
		sd.UserID = u.WebAuthnID()
		cred, err := s.passkeys.CreateCredential(u, sd, parsed)
		if err != nil {
			s.log.Info("identity: passkey registration refused", "err", err)
			return false, nil
		}
		var dup int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM second_factors WHERE kind = 'passkey' AND credential_id = $1`, cred.ID).Scan(&dup); err != nil {
			return false, err
		}
		if dup > 0 {
			return false, nil
		}
		sealed, err := s.sealPasskey(ctx, tx, p.Account.SubjectID, cred)
		if err != nil {
			return false, err
		}
		id := "f_" + newSessionID()
		if _, err := tx.ExecContext(ctx, `INSERT INTO second_factors (id, subject_id, kind, name, secret_sealed, credential_id, created_at, confirmed_at)
VALUES ($1, $2, 'passkey', 'Passkey', $3, $4, $5, $5)`, id, p.Account.SubjectID, sealed, cred.ID, now); err != nil {
			return false, err
		}
		codes, err = s.factorAdded(ctx, tx, p.Account.SubjectID, FactorPasskey, id, now)
		return err == nil, err
	})
	return codes, err
}

// BeginPasskeyLogin starts giving the session's second factor with one of
// the account's passkeys. It returns the options for
// navigator.credentials.get, as JSON.
func (s *Service) BeginPasskeyLogin(ctx context.Context, p Principal) (json.RawMessage, error) {
	if s.passkeys == nil {
		return nil, errNoPasskeys()
	}
	var out []byte
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		u, err := s.loadPasskeyUser(ctx, tx, p.Account.SubjectID)
		if err != nil {
			return err
		}
		if len(u.factors) == 0 {
			return fault.New(fault.NotFound, "this account has no passkey")
		}
		assertion, sd, err := s.passkeys.BeginLogin(u)
		if err != nil {
			return err
		}
		if out, err = json.Marshal(assertion); err != nil {
			return err
		}
		return s.putChallenge(ctx, tx, p.Session.ID, ceremonyLogin, sd)
	})
	if err != nil {
		if fault.CodeOf(err) != fault.Internal {
			return nil, err
		}
		return nil, fmt.Errorf("identity: begin passkey login: %w", err)
	}
	return out, nil
}

// FinishPasskeyLogin takes the browser's answer to the options of
// BeginPasskeyLogin: a throttled, audited second-factor attempt. The
// challenge is spent by the first answer, right or wrong; an answer from
// another origin, or from an authenticator whose signature counter did not
// move forward (a cloned key), is refused.
func (s *Service) FinishPasskeyLogin(ctx context.Context, p Principal, response []byte, m Meta) error {
	if s.passkeys == nil {
		return errNoPasskeys()
	}
	parsed, perr := protocol.ParseCredentialRequestResponseBytes(response)
	return s.secondFactorAttempt(ctx, p, m, func(tx *sql.Tx, now time.Time) (bool, error) {
		sd, ok, err := s.takeChallenge(ctx, tx, p.Session.ID, ceremonyLogin, now)
		if err != nil || !ok {
			return false, err
		}
		if perr != nil {
			return false, nil
		}
		u, err := s.loadPasskeyUser(ctx, tx, p.Account.SubjectID)
		if err != nil || len(u.factors) == 0 {
			return false, err
		}
		sd.UserID = u.WebAuthnID()
		for _, f := range u.factors {
			sd.AllowedCredentialIDs = append(sd.AllowedCredentialIDs, f.cred.ID)
		}
		cred, err := s.passkeys.ValidateLogin(u, sd, parsed)
		if err != nil {
			s.log.Info("identity: passkey assertion refused", "err", err)
			return false, nil
		}
		var factorID string
		for _, f := range u.factors {
			if bytes.Equal(f.cred.ID, cred.ID) {
				factorID = f.id
			}
		}
		if cred.Authenticator.CloneWarning {
			return false, s.audit.Record(ctx, tx, audit.Event{Actor: p.Account.SubjectID, Action: "account.passkey_clone_warning", Subject: p.Account.SubjectID,
				Detail: map[string]string{"factor": factorID, "session": p.Session.ID}})
		}
		sealed, err := s.sealPasskey(ctx, tx, p.Account.SubjectID, cred)
		if err != nil {
			return false, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE second_factors SET secret_sealed = $3, last_used_at = $4 WHERE id = $1 AND subject_id = $2`,
			factorID, p.Account.SubjectID, sealed, now); err != nil {
			return false, err
		}
		return true, s.audit.Record(ctx, tx, audit.Event{Actor: p.Account.SubjectID, Action: "session.second_factor", Subject: p.Account.SubjectID,
			Detail: map[string]string{"kind": FactorPasskey, "factor": factorID, "session": p.Session.ID}})
	})
}
