DROP TRIGGER tenant_directory_notify ON tenant_directory;
DROP FUNCTION xclade_notify_directory();
DROP TRIGGER provider_identity_notify ON provider_identity;
DROP TRIGGER auth_identity_notify ON auth_identity;
DROP FUNCTION xclade_notify_identity();
