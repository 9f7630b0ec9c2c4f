package e2e

import (
	"errors"
	"fmt"
)

// harnessUnsupported is why NewInstall skips on Windows. The harness stands in for a Linux desktop
// (a fake xdg-open that hands URLs over a FIFO, gnome-keyring on a private D-Bus); authkeeper on
// Windows opens URLs through rundll32 and stores tokens in the Credential Manager, so none of it
// applies. The Windows build is run end to end under Wine by internal/wine instead.
const harnessUnsupported = "e2e: the installation harness fakes a Linux desktop " +
	"(xdg-open over a FIFO, gnome-keyring on D-Bus); on Windows the end-to-end run is internal/wine's, under Wine"

// mkfifo fails: Windows has no FIFOs. NewInstall skips before it gets here.
func mkfifo(path string) error {
	return fmt.Errorf("mkfifo %s: %w on Windows", path, errors.ErrUnsupported)
}
