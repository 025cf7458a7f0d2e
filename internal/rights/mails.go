package rights

import (
	"context"
	"fmt"
	"strings"
	"time"

	"steward/internal/door"
	"steward/internal/mail"
	"steward/internal/policy"
	"steward/internal/store"
	"steward/internal/subject"
)

// mailKind is the outbox kind of every rights mail.
const mailKind = "rights-request"

var typeWords = map[Type]string{
	Access:        "access to your data",
	Portability:   "a copy of your data to take elsewhere",
	Rectification: "correction of your data",
	Restriction:   "restriction of processing",
	Objection:     "objection to processing",
	Erasure:       "erasure of your data",
}

func day(t time.Time) string { return t.UTC().Format("2 January 2006") }

// send mails the subject at their current address; a subject without one
// (a member whose new address awaits verification, an erased subject)
// gets nothing. It returns the outbox id, or "".
func (s *Service) send(ctx context.Context, q store.Q, subjectID, subjectLine, text string) (string, error) {
	sub, err := s.subjects.Get(ctx, q, subjectID)
	if err != nil {
		return "", err
	}
	if !sub.HasEmail {
		return "", nil
	}
	addr, err := s.emailOf(ctx, q, sub)
	if err != nil {
		return "", err
	}
	return s.sendTo(ctx, q, subjectID, addr, subjectLine, text)
}

// emailOf opens a subject's address to answer their own request.
func (s *Service) emailOf(ctx context.Context, q store.Q, sub subject.Subject) (string, error) {
	v, err := s.door.Subject(ctx, q, door.Subject(), sub.ID)
	if err != nil {
		return "", err
	}
	return sub.Email(ctx, v)
}

func (s *Service) sendTo(ctx context.Context, q store.Q, subjectID, to, subjectLine, text string) (string, error) {
	text += "\n\n— " + s.pol.Controller.Name + " (" + s.pol.Controller.Contact + ")\n"
	id, err := s.outbox.Enqueue(ctx, q, mail.Message{SubjectID: subjectID, To: to, Subject: subjectLine, Text: text, Kind: mailKind,
		Purpose: policy.SubjectRequest})
	if err != nil {
		return "", fmt.Errorf("rights: mail: %w", err)
	}
	return id, nil
}

func (s *Service) centre(r Request) string {
	if r.Channel == ChannelEmail {
		return fmt.Sprintf("You can follow it with the token you received when you confirmed your code: GET %s/api/v1/requests/%s", s.baseURL, r.ID)
	}
	return "Follow it in your privacy centre: " + s.baseURL + "/account/privacy"
}

// mailRequest tells the subject about a transition of their request.
// Transitions that happen in one moment (verified and completed at once,
// for a restriction) share one mail.
func (s *Service) mailRequest(ctx context.Context, q store.Q, r Request, event string) error {
	what := typeWords[r.Type]
	var subj string
	var b strings.Builder
	switch event {
	case "received":
		subj = "We received your privacy request"
		fmt.Fprintf(&b, "We received your request for %s (reference %s) on %s.\n\n", what, r.ID, day(r.ReceivedAt))
		fmt.Fprintf(&b, "We will answer by %s: one month from receipt. If the request is complex we may extend this by up to two months; we would tell you why within the first month.\n", day(r.DueAt))
		if r.NeedsReview {
			b.WriteString("\nA member of our privacy staff will review it.\n")
		}
		if r.Type == Rectification && r.Params.Restrict {
			b.WriteString("\nAs you asked, we restricted the processing of the data concerned while we assess your correction: we only store it meanwhile.\n")
		}
		if r.Type == Objection {
			b.WriteString("\nYour objection took effect at once: we stopped processing your data for " + strings.Join(r.Params.Purposes, ", ") + ".\n")
		}
	case "completed":
		subj = "Your privacy request is done"
		fmt.Fprintf(&b, "Your request for %s (reference %s) is complete.\n\n", what, r.ID)
		switch r.Type {
		case Access, Portability:
			fmt.Fprintf(&b, "Your copy is ready to download for %d days. For your safety this mail does not contain it.\n", int(s.cfg.ExportTTL.Hours()/24))
		case Restriction:
			if r.Params.Lift {
				b.WriteString("The restriction of processing you asked for is lifted.\n")
			} else {
				b.WriteString("We now only store the data concerned, and use it only to defend legal claims, for security, or to answer your requests. We will tell you before this restriction is lifted.\n")
			}
		case Objection:
			b.WriteString("Your objection stands: we no longer process your data for " + strings.Join(r.Params.Purposes, ", ") + ".\n")
		case Rectification:
			b.WriteString("We assessed your correction; the result is in your privacy centre.\n")
		case Erasure:
			b.WriteString("The data this erasure covered was erased; the result lists what was kept and why.\n")
		}
	case "refused":
		subj = "About your privacy request"
		fmt.Fprintf(&b, "We cannot do what you asked in your request for %s (reference %s).\n\nThe reason: %s\n\n", what, r.ID, r.RefusalReason)
		fmt.Fprintf(&b, "You may complain to %s", s.pol.Controller.Authority.Name)
		if u := s.pol.Controller.Authority.URL; u != "" {
			fmt.Fprintf(&b, " (%s)", u)
		}
		b.WriteString(", and seek a judicial remedy.\n")
	case "extended":
		subj = "We need more time for your privacy request"
		fmt.Fprintf(&b, "We need more time to answer your request for %s (reference %s).\n\nThe reason: %s\n\nWe will answer by %s.\n", what, r.ID, r.ExtensionReason, day(r.DueAt))
	case "expired":
		subj = "Your privacy request expired"
		fmt.Fprintf(&b, "Your request for %s (reference %s) was not confirmed with the code we sent, so it expired. Nothing was done. You may ask again at any time.\n", what, r.ID)
	default:
		return fmt.Errorf("rights: no mail for %s", event)
	}
	b.WriteString("\n" + s.centre(r))
	_, err := s.send(ctx, q, r.SubjectID, subj, b.String())
	return err
}

// mailCode sends the single-use code of an emailed request.
func (s *Service) mailCode(ctx context.Context, q store.Q, r Request, to, code string) error {
	text := fmt.Sprintf("Someone — we hope you — asked %s for %s (reference %s).\n\n"+
		"To confirm that this address is yours, enter this code: %s\n\n"+
		"It works once, for %s. If you did not ask, ignore this mail: nothing happens without the code.",
		s.pol.Controller.Name, typeWords[r.Type], r.ID, code, humanDuration(s.cfg.CodeTTL))
	_, err := s.sendTo(ctx, q, r.SubjectID, to, "Your confirmation code", text)
	return err
}

func humanDuration(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		h := int(d.Hours())
		return fmt.Sprintf("%d hour%s", h, plural(h))
	default:
		m := int(d.Minutes())
		return fmt.Sprintf("%d minute%s", m, plural(m))
	}
}

// mailErasure sends the completion notice of an account erasure, before
// the address itself is erased, and returns its outbox id.
func (s *Service) mailErasure(ctx context.Context, q store.Q, r Request, out *Outcome) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "Your request for %s (reference %s) is carried out.\n\n", typeWords[r.Type], r.ID)
	if r.Params.UnderAge {
		fmt.Fprintf(&b, "We learned that the account holder is under %d, the minimum age for our services, so we erased the account and its data.\n\n", s.pol.MinimumAge)
	}
	b.WriteString("Erased:\n")
	for _, e := range out.Erased {
		fmt.Fprintf(&b, "  - %s (%d)\n", e.Dataset, e.Erased)
	}
	b.WriteString("  - your email address, which goes right after this mail\n")
	if len(out.Kept) > 0 {
		b.WriteString("\nKept, and why:\n")
		for _, k := range out.Kept {
			fmt.Fprintf(&b, "  - %s (%d): %s\n", k.Dataset, k.Kept, k.Explanation)
		}
	}
	if len(out.Recipients) > 0 {
		b.WriteString("\nWe are telling the recipients of this data:\n")
		for _, rc := range out.Recipients {
			fmt.Fprintf(&b, "  - %s\n", rc.Name)
		}
	}
	b.WriteString("\nThis is the last mail we send you: your address is erased once it has left.")
	return s.send(ctx, q, r.SubjectID, "Your data was erased", b.String())
}

// mailLift tells the subject a restriction placed for a review is about
// to be lifted (Art. 18(3)).
func (s *Service) mailLift(ctx context.Context, q store.Q, r Request) (string, error) {
	text := fmt.Sprintf("We finished assessing your correction (reference %s). The restriction of processing placed while we assessed it "+
		"will now be lifted, and we will use the data again as the privacy policy says. If you disagree, you may object or complain to %s.",
		r.ID, s.pol.Controller.Authority.Name)
	return s.send(ctx, q, r.SubjectID, "The restriction of your data will be lifted", text)
}
