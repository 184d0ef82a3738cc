package adapters

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/switchboard-chat/switchboard/bridge"
)

// MaxAvatarSize bounds the image of one avatar. Avatars travel through
// the store, not through bridge events, so a larger one is not kept.
const MaxAvatarSize = 512 * 1024

// Avatar is a sender's picture as their network shows it. Empty Data
// means the sender has none (they removed it).
type Avatar struct {
	// Hash is AvatarHash(Data): equal hashes, equal pictures.
	Hash string
	Mime string
	Data []byte
}

// AvatarStore holds the avatars one network reads for its senders, for
// the networks that can show them (a Matrix ghost's picture). It is
// shared by all adapters and keyed by sender network and id; the name
// does not matter.
type AvatarStore interface {
	// PutAvatar records s's avatar; empty data records that s has none.
	// Data over MaxAvatarSize is not kept.
	PutAvatar(ctx context.Context, s bridge.Sender, mime string, data []byte) error
	// AvatarHash is the hash of s's avatar ("" for none), and false when
	// nothing is known of s. It is cheap (cached in memory): adapters ask
	// it for every message.
	AvatarHash(ctx context.Context, s bridge.Sender) (hash string, ok bool, err error)
	// Avatar is s's avatar, and false when nothing is known of s.
	Avatar(ctx context.Context, s bridge.Sender) (Avatar, bool, error)
}

// AvatarUser is implemented by adapters that read or show avatars. The
// service hands over the shared AvatarStore before Start.
type AvatarUser interface {
	UseAvatars(AvatarStore)
}

// AvatarHash names an avatar's bytes: the hex SHA-1 that XMPP presences
// advertise (XEP-0153), so an adapter can tell from a presence alone
// whether the store has that picture already. "" for no picture.
func AvatarHash(data []byte) string {
	if len(data) == 0 {
		return ""
	}
	sum := sha1.Sum(data)
	return hex.EncodeToString(sum[:])
}

// ImageType is the media type data's bytes show, and whether it is an
// image. Avatars are typed by what they are, never by what the sending
// network declares, which anyone can set.
func ImageType(data []byte) (string, bool) {
	mime, _, _ := strings.Cut(http.DetectContentType(data), ";")
	return mime, strings.HasPrefix(mime, "image/")
}
