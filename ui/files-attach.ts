// The sending side of files in a chat, whole: the paper clip with drop and
// paste (./attach.ts) and the uploads it is given (./files.ts), for the
// operator console. (The widget panel puts them together itself, so that its
// first load draws the paper clip without the generated client.) Kept apart
// from both so that neither pulls the other into a bundle that needs only one.
import type { FileClient } from "@lethe/sdk";
import { createPaperClip } from "./attach";
import { createUploads } from "./files";

export interface AttachDeps {
  files: FileClient;
  /** The open chat, or undefined. */
  chatId(): string | undefined;
}

export interface Attach {
  /** The paper clip, for the composer. */
  readonly button: HTMLButtonElement;
  /** The uploads under way or failed (and the hidden file input), for above the composer. */
  readonly uploads: HTMLElement;
  /** load asks the server what may be sent into the chat; the button shows only if files are on. */
  load(): Promise<void>;
  /** enable turns sending files on for an open chat (when the server allows them) or off. */
  enable(on: boolean): void;
  /** dropOn takes files dropped on el or pasted into it. */
  dropOn(el: HTMLElement): void;
  /** clear cancels every upload and forgets the limits (a new chat). */
  clear(): void;
}

/** createAttach builds the sending side of files: the paper clip (./attach.ts) and the uploads it is given. */
export function createAttach(d: AttachDeps): Attach {
  const clip = createPaperClip({
    chatId: d.chatId,
    getLimits: (chatId) => d.files.getFileLimits({ chatId }),
    onFiles: (files) => uploads.add(files),
  });
  const uploads = createUploads({ files: d.files, chatId: d.chatId, clip });
  return {
    button: clip.button,
    uploads: clip.uploads,
    load: clip.load,
    enable: clip.enable,
    dropOn: clip.dropOn,
    clear() {
      uploads.clear();
      clip.reset();
    },
  };
}
