package testenv

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"strings"

	"mellium.im/xmpp/jid"
)

// PNG returns a small PNG of random colours: every call a different
// picture, so a test cannot pass on a leftover.
func PNG() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := range img.Pix {
		img.Pix[i] = byte(rand.Uint32())
	}
	img.Set(0, 0, color.RGBA{A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// SHA1Hex is the hash XEP-0153 presences advertise for a photo.
func SHA1Hex(data []byte) string {
	sum := sha1.Sum(data)
	return hex.EncodeToString(sum[:])
}

// PublishVCard stores the client's own vcard-temp card with a photo (an
// IQ set to its own account, as XEP-0054 clients do).
func (c *XMPPClient) PublishVCard(mime string, photo []byte) error {
	var card strings.Builder
	card.WriteString(`<vCard xmlns="vcard-temp"><FN>` + xmlEscape(c.JID.Localpart()) + `</FN>`)
	if len(photo) > 0 {
		// Line breaks, as clients write BINVAL.
		b64 := base64.StdEncoding.EncodeToString(photo)
		var lines []string
		for len(b64) > 76 {
			lines = append(lines, b64[:76])
			b64 = b64[76:]
		}
		lines = append(lines, b64)
		card.WriteString(`<PHOTO><TYPE>` + xmlEscape(mime) + `</TYPE><BINVAL>` + strings.Join(lines, "\n") + `</BINVAL></PHOTO>`)
	}
	card.WriteString(`</vCard>`)
	st, err := c.IQ(jid.JID{}, "set", card.String())
	if err != nil {
		return err
	}
	if st.Type() != "result" {
		return fmt.Errorf("publish vCard: %s", st.Raw)
	}
	return nil
}

// AvatarUpdate is the presence payload that advertises a photo hash
// (XEP-0153); "" says the user has no avatar.
func AvatarUpdate(hash string) string {
	return `<x xmlns="vcard-temp:x:update"><photo>` + xmlEscape(hash) + `</photo></x>`
}

// JoinWithAvatar enters a MUC room (asking for no history) advertising
// an avatar hash, and waits for the room's self-presence.
func (c *XMPPClient) JoinWithAvatar(room jid.JID, nick, hash string) error {
	return c.JoinWith(room, nick, `<x xmlns="http://jabber.org/protocol/muc"><history maxstanzas="0"/></x>`+AvatarUpdate(hash))
}
