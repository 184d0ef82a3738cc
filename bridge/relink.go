package bridge

import "context"

// linked reports whether room is in a link, after Relink (if set) when
// it is not: an entry committed for a room another instance linked is
// failed only once this instance's links say so too.
func (r *Router) linked(ctx context.Context, room RoomAddr) bool {
	if _, _, ok := r.links.LinkOf(room); ok {
		return true
	}
	if r.Relink == nil {
		return false
	}
	r.Relink(ctx)
	_, _, ok := r.links.LinkOf(room)
	return ok
}
