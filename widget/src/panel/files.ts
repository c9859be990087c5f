/**
 * The files UI's chunk (ui/files.ts: the paper clip, drop and paste, uploads,
 * shared files with thumbnails), loaded by the chat view when a chat shows.
 * It carries the generated FileService client and the protobuf runtime, which
 * the panel's first load does without; the "Your data" chunk shares them.
 */
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { FileService, FileSharedSchema, createClient, createLetheTransport, errorMessage } from "@lethe/sdk";
import { createAttach, disableDownloads, fileCard } from "../../../ui/files";

export interface FilesUi {
  readonly attach: ReturnType<typeof createAttach>;
  /** card draws a shared file from its event's JSON; errors are shown with showError. */
  card(json: Record<string, unknown>, showError: (msg: string) => void): HTMLElement;
  disableDownloads(root: HTMLElement): void;
}

/** filesUi builds the files UI of the chat whose visitor token and id token and chatId give. */
export function filesUi(token: () => string | undefined, chatId: () => string | undefined): FilesUi {
  const files = createClient(FileService, createLetheTransport(location.origin, { token }));
  return {
    attach: createAttach({ files, chatId }),
    card: (json, showError) =>
      fileCard(fromJson(FileSharedSchema, json as JsonValue, { ignoreUnknownFields: true }), files, (err) => showError(errorMessage(err))),
    disableDownloads,
  };
}
