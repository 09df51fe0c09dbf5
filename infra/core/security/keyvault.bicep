// Key Vault (RBAC authorization) holding the Entra client secret the app reads as a Key Vault reference.
param location string
param tags object = {}
param name string
param secretName string
@secure()
param secretValue string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
  }
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: secretName
  properties: {
    value: secretValue
    contentType: 'Entra client secret for BC and Dataverse'
  }
}

output name string = vault.name
@description('Versionless URI: the Key Vault reference follows the latest version after rotation.')
output secretUri string = '${vault.properties.vaultUri}secrets/${secret.name}/'
