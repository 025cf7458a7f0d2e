package policy

import (
	"context"

	"steward/internal/store"
)

// Archive serves the published versions of the policy, kept for ever:
// the public notice of each version and the list of them.
type Archive struct{ db *store.DB }

// NewArchive returns the archive of the versions published in db.
func NewArchive(db *store.DB) *Archive { return &Archive{db: db} }

// Get returns published version n, or fault.NotFound.
func (a *Archive) Get(ctx context.Context, n int) (Version, error) { return Get(ctx, a.db, n) }

// List returns every published version, newest first, without the raw
// file.
func (a *Archive) List(ctx context.Context) ([]Version, error) { return List(ctx, a.db) }
