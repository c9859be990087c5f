/**
 * The files UI's chunk (ui/files.ts: uploads with their progress, and shared
 * files with thumbnails), loaded by the chat view on the first use of files:
 * the first click of the paper clip, the first file chosen, dropped or
 * pasted, or the first shared file to draw. The paper clip itself, with drop
 * and paste and the chat's file limits, is in the panel's first load
 * (ui/attach.ts over the JSON api). This chunk carries the generated
 * FileService client and the protobuf runtime; the "Your data" chunk shares them.
 */
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { FileService, FileSharedSchema, createClient, createLetheTransport, errorMessage } from "@lethe/sdk";
import type { PaperClip } from "../../../ui/attach";
import { createUploads, disableDownloads, fileCard } from "../../../ui/files";

export interface FilesUi {
  /** upload sends files into the open chat, one row each in the paper clip's list of uploads. */
  upload(files: File[]): void;
  /** clear cancels every upload (the chat ended, or another shows). */
  clear(): void;
  /** card draws a shared file from its event's JSON; errors are shown with showError. */
  card(json: Record<string, unknown>, showError: (msg: string) => void): HTMLElement;
  disableDownloads(root: HTMLElement): void;
}

/** filesUi builds the files UI of the chat whose visitor token and id token and chatId give, sending what clip is given. */
export function filesUi(token: () => string | undefined, chatId: () => string | undefined, clip: PaperClip): FilesUi {
  const files = createClient(FileService, createLetheTransport(location.origin, { token }));
  const uploads = createUploads({ files, chatId, clip });
  return {
    upload: (list) => uploads.add(list),
    clear: () => uploads.clear(),
    card: (json, showError) =>
      fileCard(fromJson(FileSharedSchema, json as JsonValue, { ignoreUnknownFields: true }), files, (err) => showError(errorMessage(err))),
    disableDownloads,
  };
}
