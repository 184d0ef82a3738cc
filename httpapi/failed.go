package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/switchboard-chat/switchboard/bridge"
)

// The failed list: deliveries a network refused for good (a room the bot
// was thrown out of, a message too large, a person not online). An
// operator sees them here, and queues one again once the cause is fixed,
// or drops it.

const (
	defaultFailedLimit = 100
	maxFailedLimit     = 1000
	// previewRunes bounds the text shown of each failed message.
	previewRunes = 200
)

// Failed is a delivery on the failed list, as the API shows it.
type Failed struct {
	Seq      int64     `json:"seq"`
	Link     string    `json:"link"`
	Room     string    `json:"room"`
	EventID  string    `json:"event_id"`
	Kind     string    `json:"kind"`
	Sender   string    `json:"sender"`
	Text     string    `json:"text,omitempty"`
	Reason   string    `json:"reason"`
	FailedAt time.Time `json:"failed_at"`
}

func (s *API) failedRoutes(mux *http.ServeMux) {
	mux.Handle("GET /api/failed", s.authorized(s.listFailed))
	mux.Handle("POST /api/failed/{seq}/retry", s.authorized(s.retryFailed))
	mux.Handle("DELETE /api/failed/{seq}", s.authorized(s.discardFailed))
}

func (s *API) listFailed(w http.ResponseWriter, r *http.Request) {
	limit := defaultFailedLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxFailedLimit {
			apiError(w, http.StatusBadRequest, "limit", "want a number from 1 to "+strconv.Itoa(maxFailedLimit))
			return
		}
		limit = n
	}
	list, err := s.failed.FailedDeliveries(r.Context(), limit)
	if err != nil {
		s.log.Warn("provisioning API: failed list", "err", err)
		apiError(w, http.StatusInternalServerError, "", "cannot read the failed list")
		return
	}
	out := make([]Failed, 0, len(list))
	for _, f := range list {
		h := f.Event.Head()
		item := Failed{
			Seq: f.Seq, Link: f.Link, Room: f.Target.String(), EventID: string(h.ID), Kind: string(f.Event.Kind()),
			Sender: h.Sender.Network + ":" + h.Sender.ID, Reason: f.Reason, FailedAt: f.FailedAt,
		}
		if m, ok := f.Event.(*bridge.Message); ok {
			item.Text = preview(m.Text)
		}
		out = append(out, item)
	}
	writeJSON(w, http.StatusOK, map[string]any{"failed": out})
}

func preview(text string) string {
	if utf8.RuneCountInString(text) <= previewRunes {
		return text
	}
	return string([]rune(text)[:previewRunes]) + "…"
}

func (s *API) retryFailed(w http.ResponseWriter, r *http.Request) {
	seq, ok := failedSeq(w, r)
	if !ok {
		return
	}
	q, err := s.router.Retry(r.Context(), seq)
	if s.failedNotFound(w, err, seq) {
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"seq": q.Seq, "room": q.Target.String()})
}

func (s *API) discardFailed(w http.ResponseWriter, r *http.Request) {
	seq, ok := failedSeq(w, r)
	if !ok {
		return
	}
	if s.failedNotFound(w, s.failed.Discard(r.Context(), seq), seq) {
		return
	}
	s.log.Info("failed delivery discarded", "seq", seq)
	w.WriteHeader(http.StatusNoContent)
}

func failedSeq(w http.ResponseWriter, r *http.Request) (int64, bool) {
	seq, err := strconv.ParseInt(r.PathValue("seq"), 10, 64)
	if err != nil || seq < 1 {
		apiError(w, http.StatusBadRequest, "seq", "want the seq of a failed delivery, as GET /api/failed lists it")
		return 0, false
	}
	return seq, true
}

// failedNotFound answers an error of the failed list and reports whether
// there was one.
func (s *API) failedNotFound(w http.ResponseWriter, err error, seq int64) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, bridge.ErrNotFound):
		apiError(w, http.StatusNotFound, "seq", "no failed delivery "+strconv.FormatInt(seq, 10))
	default:
		s.log.Warn("provisioning API: failed list", "seq", seq, "err", err)
		apiError(w, http.StatusInternalServerError, "", "cannot change the failed list")
	}
	return true
}
