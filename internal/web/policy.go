package web

import (
	"net/http"
	"steward/internal/policy"
)

// policyDocument is GET /api/v1/policy: the compiled policy in force with
// its published version number and hash.
type policyDocument struct {
	Version       int            `json:"version"`
	Hash          string         `json:"hash"`
	EffectiveDate string         `json:"effective_date"`
	Policy        *policy.Policy `json:"policy"`
}

func (s *server) handlePolicyJSON() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Cache-Control", "no-cache")
		return s.encode(w, http.StatusOK, policyDocument{
			Version:       s.d.Policy.Number(),
			Hash:          s.d.Policy.Policy.Hash(),
			EffectiveDate: s.d.Policy.Policy.Version,
			Policy:        s.d.Policy.Policy,
		})
	}
}
