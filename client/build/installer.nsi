# The Windows installer of the Messenger desktop app: electron-builder's "nsis" target compiles this
# script in place of its stock template (build/installer.nsi is picked up as nsis.script), both for
# `npm run dist` and offline for `make desktop-dist`. The stock template needs the UAC, WinShell and
# nsProcess plugins, which no registry here has; this one uses nothing but what Debian's `nsis`
# package ships (Modern UI 2, LogicLib, FileFunc, x64; no plugin DLL at all).
#
# A plain per-user install: $LOCALAPPDATA\Programs\<product> (changeable on the directory page), no
# elevation, Start-menu and desktop shortcuts, an uninstaller registered under
# HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\<app GUID>. Silent: /S (and /D=<dir>).
#
# electron-builder passes (-D): PRODUCT_NAME, PRODUCT_FILENAME, VERSION, APP_ID, UNINSTALL_APP_KEY,
# APP_DESCRIPTION, MUI_ICON/MUI_UNICON, ESTIMATED_SIZE, COMPANY_NAME, APP_64/APP_64_NAME (its 7z
# archive of the app, which would need its nsis7z plugin to unpack) and the version resource
# (ProductName, ProductVersion, FileVersion, ...) as -X commands. The app's files are taken from the
# unpacked dir electron-builder writes next to that archive (<output>/win-unpacked), with File /r.

!ifndef PRODUCT_NAME | PRODUCT_FILENAME | VERSION | UNINSTALL_APP_KEY | APP_64 | APP_64_NAME
  !error "installer.nsi is compiled by electron-builder's nsis target (x64): npm run dist:win"
!endif

!searchreplace APP_DIR "${APP_64}" "${APP_64_NAME}" "win-unpacked"
!define APP_EXE "${PRODUCT_FILENAME}.exe"
!if /FileExists "${APP_DIR}\${APP_EXE}"
!else
  !error "no ${APP_DIR}\${APP_EXE}: build the win-unpacked dir (electron-builder --win nsis --x64)"
!endif
!define UNINSTALL_EXE "Uninstall ${PRODUCT_FILENAME}.exe"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\${UNINSTALL_APP_KEY}"
!ifdef COMPANY_NAME
  !define PUBLISHER "${COMPANY_NAME}"
!else
  !define PUBLISHER "${PRODUCT_NAME}"
!endif

!include "MUI2.nsh"
!include "LogicLib.nsh"
!include "x64.nsh"

Name "${PRODUCT_NAME}"
BrandingText "${PRODUCT_NAME} ${VERSION}"
RequestExecutionLevel user
ManifestDPIAware true
InstallDir "$LOCALAPPDATA\Programs\${PRODUCT_FILENAME}"
InstallDirRegKey HKCU "${UNINSTALL_KEY}" "InstallLocation"
ShowInstDetails nevershow
ShowUninstDetails nevershow

!define MUI_ABORTWARNING
!define MUI_FINISHPAGE_RUN "$INSTDIR\${APP_EXE}"
!define MUI_FINISHPAGE_RUN_TEXT "Start ${PRODUCT_NAME}"
!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
# The languages electron-builder configured (its header's addLangs: nsis.installerLanguages, all it has
# messages for by default); their texts are Modern UI's, the few of this script's own are English.
!ifmacrodef addLangs
  !insertmacro addLangs
!else
  !insertmacro MUI_LANGUAGE "English"
!endif

Function .onInit
  SetShellVarContext current
  ${IfNot} ${RunningX64}
    MessageBox MB_ICONSTOP "${PRODUCT_NAME} needs 64-bit Windows." /SD IDOK
    Abort
  ${EndIf}
  SetRegView 64
FunctionEnd

Section "${PRODUCT_NAME}" SecApp
  SectionIn RO
  # The uninstaller removes its whole dir: never install into a folder of other things (the user's
  # choice on the directory page, or /D=): an existing folder without the app gets a subfolder.
  ${If} ${FileExists} "$INSTDIR\*.*"
  ${AndIfNot} ${FileExists} "$INSTDIR\${APP_EXE}"
    StrCpy $INSTDIR "$INSTDIR\${PRODUCT_FILENAME}"
  ${EndIf}
  SetOutPath "$INSTDIR"
  # A previous version's files go first (its resources, locales), the user's data is elsewhere (%APPDATA%).
  RMDir /r "$INSTDIR\resources"
  RMDir /r "$INSTDIR\locales"
  # elevate.exe: electron-builder's helper for its stock template's per-machine installs, not needed here.
  File /r /x elevate.exe "${APP_DIR}\*.*"
  WriteUninstaller "$INSTDIR\${UNINSTALL_EXE}"

  CreateShortCut "$SMPROGRAMS\${PRODUCT_NAME}.lnk" "$INSTDIR\${APP_EXE}" "" "$INSTDIR\${APP_EXE}" 0
  CreateShortCut "$DESKTOP\${PRODUCT_NAME}.lnk" "$INSTDIR\${APP_EXE}" "" "$INSTDIR\${APP_EXE}" 0

  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "${PRODUCT_NAME} ${VERSION}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher" "${PUBLISHER}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\${APP_EXE},0"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\${UNINSTALL_EXE}"'
  WriteRegStr HKCU "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\${UNINSTALL_EXE}" /S'
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1
  !ifdef ESTIMATED_SIZE
    WriteRegDWORD HKCU "${UNINSTALL_KEY}" "EstimatedSize" ${ESTIMATED_SIZE}
  !endif
SectionEnd

Function un.onInit
  SetShellVarContext current
  SetRegView 64
FunctionEnd

Section "Uninstall"
  Delete "$SMPROGRAMS\${PRODUCT_NAME}.lnk"
  Delete "$DESKTOP\${PRODUCT_NAME}.lnk"
  # The install dir holds nothing but what the installer put there (the app's data is in %APPDATA%).
  ${If} ${FileExists} "$INSTDIR\${APP_EXE}"
    RMDir /r "$INSTDIR"
  ${EndIf}
  DeleteRegKey HKCU "${UNINSTALL_KEY}"
SectionEnd
