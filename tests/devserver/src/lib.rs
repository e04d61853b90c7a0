//! The bundled dev KeyServer.
