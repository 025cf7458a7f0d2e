package identity

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"steward/internal/mail"
	"steward/internal/policy"
	"steward/internal/store"
)

// Mail kinds this package sends.
const (
	MailVerification      = "verification"
	MailSignupExisting    = "signup-existing"
	MailFinishSignup      = "finish-signup"
	MailPasswordReset     = "password-reset"
	MailEmailChange       = "email-change"
	MailEmailChangeNotice = "email-change-notice"
	MailPasswordChanged   = "password-changed"
	MailFactorAdded       = "second-factor-added"
)

// link returns an absolute link to a page of the server with a token.
func (s *Service) link(path, token string) string {
	u := s.baseURL + path
	if token != "" {
		u += "?token=" + url.QueryEscape(token)
	}
	return u
}

// maskEmail shows enough of an address for its owner to recognise it:
// "a***@example.org".
func maskEmail(e string) string {
	local, domain, ok := strings.Cut(e, "@")
	if !ok || local == "" {
		return "***"
	}
	r := []rune(local)
	return string(r[0]) + "***@" + domain
}

func (s *Service) send(ctx context.Context, q store.Q, subjectID, to, kind, subj, text string) error {
	// Account mail keeps the account secure: confirmations, resets and
	// warnings of changes.
	_, err := s.outbox.Enqueue(ctx, q, mail.Message{SubjectID: subjectID, To: to, Subject: subj, Text: text, Kind: kind, Purpose: policy.Security})
	if err != nil {
		return fmt.Errorf("identity: mail %s: %w", kind, err)
	}
	return nil
}

func (s *Service) mailVerification(ctx context.Context, q store.Q, subjectID, to, token string) error {
	return s.send(ctx, q, subjectID, to, MailVerification, "Confirm your email address",
		"Hello,\n\nplease confirm that this is your email address by opening this link:\n\n"+
			s.link("/verify-email", token)+"\n\n"+
			"The link works once and for "+human(s.cfg.VerifyTTL)+".\n"+
			"If you did not sign up, ignore this message: without confirmation the address stays unconfirmed.\n")
}

func (s *Service) mailSignupExisting(ctx context.Context, q store.Q, subjectID, to string) error {
	return s.send(ctx, q, subjectID, to, MailSignupExisting, "Someone tried to sign up with your address",
		"Hello,\n\nsomeone just tried to create an account with this email address, which already has one.\n\n"+
			"If it was you, log in at "+s.link("/login", "")+"\n"+
			"If you forgot your password, ask for a new one at "+s.link("/reset-password", "")+"\n\n"+
			"If it was not you, you need not do anything: your account is unchanged.\n")
}

// mailFactorAdded tells an account's owner a second factor was added, so
// one added by someone else in their session does not go unnoticed.
func (s *Service) mailFactorAdded(ctx context.Context, q store.Q, subjectID, to, kind string) error {
	what := "an authenticator app was just added as a second factor of your account. From now on, signing in asks for its code."
	if kind == FactorPasskey {
		what = "a passkey was just added as a second factor of your account. From now on, signing in can ask for it."
	}
	return s.send(ctx, q, subjectID, to, MailFactorAdded, "A second factor was added to your account",
		"Hello,\n\n"+what+"\n\n"+
			"If it was not you, reset your password at "+s.link("/reset-password", "")+" and write to us at once.\n")
}

func (s *Service) mailFinishSignup(ctx context.Context, q store.Q, subjectID, to, token string) error {
	return s.send(ctx, q, subjectID, to, MailFinishSignup, "Finish signing up",
		"Hello,\n\nsomeone just tried to sign up with this email address. An account with it was started earlier "+
			"but never confirmed.\n\nIf it is yours, confirm the address and choose its password with this link:\n\n"+
			s.link("/reset-password", token)+"\n\n"+
			"The link works once and for "+human(s.cfg.ResetTTL)+". If you did not sign up, ignore this message.\n")
}

func (s *Service) mailReset(ctx context.Context, q store.Q, subjectID, to, token string, verified bool) error {
	extra := ""
	if !verified {
		extra = "Choosing a password with this link also confirms your email address.\n"
	}
	return s.send(ctx, q, subjectID, to, MailPasswordReset, "Choose a new password",
		"Hello,\n\nsomeone asked to reset the password of the account with this email address. "+
			"To choose a new password, open this link:\n\n"+
			s.link("/reset-password", token)+"\n\n"+extra+
			"The link works once and for "+human(s.cfg.ResetTTL)+". Using it signs out every session.\n"+
			"If you did not ask for this, ignore this message: your password is unchanged.\n")
}

func (s *Service) mailEmailChange(ctx context.Context, q store.Q, subjectID, to, token string) error {
	return s.send(ctx, q, subjectID, to, MailEmailChange, "Confirm your new email address",
		"Hello,\n\nthe account holder asked to use this address from now on. To confirm it, open this link:\n\n"+
			s.link("/verify-email", token)+"\n\n"+
			"The link works once and for "+human(s.cfg.EmailChangeTTL)+". Until then the old address stays in use.\n"+
			"If you did not ask for this, ignore this message.\n")
}

func (s *Service) mailEmailChangeNotice(ctx context.Context, q store.Q, subjectID, to, newEmail string) error {
	return s.send(ctx, q, subjectID, to, MailEmailChangeNotice, "Your email address is being changed",
		"Hello,\n\nsomeone signed in to your account asked to change its email address to "+maskEmail(newEmail)+". "+
			"The change takes effect when the new address is confirmed.\n\n"+
			"If this was not you, change your password at "+s.link("/account", "")+" and sign out the other sessions "+
			"there, or reset it at "+s.link("/reset-password", "")+".\n")
}

func (s *Service) mailPasswordChanged(ctx context.Context, q store.Q, subjectID, to string) error {
	return s.send(ctx, q, subjectID, to, MailPasswordChanged, "Your password was changed",
		"Hello,\n\nthe password of your account was just changed, and every other session was signed out.\n\n"+
			"If this was not you, reset your password at "+s.link("/reset-password", "")+".\n")
}

// human writes a token lifetime for a mail: "48 hours", "1 hour".
func human(d time.Duration) string {
	h := int(d.Hours())
	switch {
	case h >= 48 && h%24 == 0:
		return fmt.Sprintf("%d days", h/24)
	case h == 1:
		return "1 hour"
	case h > 1:
		return fmt.Sprintf("%d hours", h)
	}
	return "a short time"
}
