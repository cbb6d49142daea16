// The renderer's only window into Electron: the server address, the unread total for the tray,
// native notifications and "open this chat" when one is clicked. Nothing else crosses.
const { contextBridge, ipcRenderer } = require('electron');

// Asked on every load, so a reload after the address changed starts with the new one.
const { serverUrl } = ipcRenderer.sendSync('settings:get');

contextBridge.exposeInMainWorld('messengerDesktop', {
  serverUrl,
  setServerUrl: (url) => ipcRenderer.invoke('settings:set-server', String(url)),
  setUnread: (total) => ipcRenderer.send('unread:set', Number(total) || 0),
  notify: ({ title, body, chatId }) => ipcRenderer.send('notify', { title: String(title), body: String(body), chatId: Number(chatId) }),
  onOpenChat: (callback) => {
    ipcRenderer.on('open-chat', (_event, chatId) => callback(Number(chatId)));
  },
});
