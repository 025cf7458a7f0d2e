package web

import (
	"net/http"
	"time"

	"steward/internal/fault"
	"steward/internal/retention"
)

// The retention sweep's dry run and legal holds, for privacy staff.

type holdBody struct {
	SubjectID string    `json:"subject_id"`
	Category  string    `json:"category"`
	Reason    string    `json:"reason"`
	Source    string    `json:"source"`
	ExpiresAt time.Time `json:"expires_at"`
}

type reviewBody struct {
	ExpiresAt time.Time `json:"expires_at"`
}

type holdsJSON struct {
	Holds []retention.Hold `json:"holds"`
}

func (s *server) handleRetentionPlan() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		rep, err := s.d.Retention.Plan(r.Context())
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, rep)
	}
}

func (s *server) handleHolds() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		list, err := s.d.Retention.Holds(r.Context(), r.URL.Query().Get("all") != "")
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, holdsJSON{Holds: list})
	}
}

func (s *server) handlePlaceHold() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var b holdBody
		if err := decode(r, &b); err != nil {
			return err
		}
		if b.Source == "" {
			b.Source = "staff"
		}
		h, err := s.d.Retention.Place(r.Context(), a.P.Account.SubjectID, retention.Hold{SubjectID: b.SubjectID, Category: b.Category,
			Reason: b.Reason, Source: b.Source, ExpiresAt: b.ExpiresAt})
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusCreated, h)
	}
}

func (s *server) handleReviewHold() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var b reviewBody
		if err := decode(r, &b); err != nil {
			return err
		}
		h, err := s.d.Retention.Review(r.Context(), a.P.Account.SubjectID, r.PathValue("id"), b.ExpiresAt)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, h)
	}
}

func (s *server) handleLiftHold() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		h, err := s.d.Retention.Lift(r.Context(), a.P.Account.SubjectID, r.PathValue("id"))
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, h)
	}
}

// formDate reads a yyyy-mm-dd field as the end of that day, UTC.
func formDate(r *http.Request, name string) (time.Time, error) {
	v := r.PostForm.Get(name)
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, fault.FieldError(name, "give a date as yyyy-mm-dd")
	}
	return t.Add(24*time.Hour - time.Second), nil
}
