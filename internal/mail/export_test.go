package mail

import "time"

// SetBatchSlice changes how long one job delivers a batch before handing
// the rest to a new job, so a test can see the hand-over.
func SetBatchSlice(o *Outbox, d time.Duration) { o.batchSlice = d }
